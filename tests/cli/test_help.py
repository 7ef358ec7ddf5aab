import pytest

from vida_loader.cli import cli, main


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    names = list(cli.commands)
    for name in [None, *names]:
        argv = ["--help"] if name is None else [name, "--help"]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "Usage:" in out
        if name is not None:
            assert cli.commands[name].help, f"command {name} has no help text"


def test_unknown_flag_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-flag"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-flag" in err[0]
