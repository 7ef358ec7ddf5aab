import click
import pytest

from vida_loader.cli import cli, main


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths: list[list[str]] = [[]]
    for name, command in cli.commands.items():
        paths.append([name])
        if isinstance(command, click.Group):  # config check, profiles list|show|check
            paths += [[name, sub] for sub in command.commands]
    assert ["config", "check"] in paths and ["profiles", "show"] in paths
    for path in paths:
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        assert "Usage:" in out
        command: click.Command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        assert command.help, f"command {' '.join(path)} has no help text"


def test_unknown_flag_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-flag"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-flag" in err[0]


@pytest.mark.parametrize(
    "args, see",
    [
        (["nosuch"], "(see 'vida-loader --help')"),
        (["run", "--nosuch"], "(see 'vida-loader run --help')"),
        (["profiles", "show", "--nosuch"], "(see 'vida-loader profiles show --help')"),
    ],
)
def test_usage_hint_names_the_command_path_once(
    capsys: pytest.CaptureFixture[str], args: list[str], see: str
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith(see), err
