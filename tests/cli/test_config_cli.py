"""Where settings come from, end to end through the CLI: `vida-loader config`, legacy
names, env files, profiles, validation and redaction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vida_loader.cli import main

SECRET = "Pa55-Very-Secret"


def _config(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Exit code, {setting: (value, origin)} and stderr of `vida-loader config ARGS`."""
    code = main(["config", *args])
    out, err = capsys.readouterr()
    rows = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"^  (\w+)\s+(\S+)\s+(.+)$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).strip())
    return code, rows, err


def _profile(folder: Path, name: str, text: str) -> Path:
    (folder / "profiles").mkdir(exist_ok=True)
    path = folder / "profiles" / f"{name}.toml"
    path.write_text(text)
    return path


# Each layer gives batch_size a different value; removing the top layer must reveal the
# next one, down to the built-in default.


@pytest.mark.parametrize(
    ("top", "value", "origin"),
    [
        ("flag", "7", "flag --batch-size"),
        ("vida env", "6", "environment VIDA_BATCH_SIZE"),
        ("legacy env", "5", "environment MIG_BATCH_SIZE (legacy name)"),
        (".env_local", "4", ".env_local MIG_BATCH_SIZE"),
        (".env", "3", ".env VIDA_BATCH_SIZE"),
        ("profile", "2", "profile 'mine'"),
        ("default", "1000", "default"),
    ],
)
def test_each_layer_beats_the_ones_below(
    top: str,
    value: str,
    origin: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cwd = Path.cwd()
    order = ["flag", "vida env", "legacy env", ".env_local", ".env", "profile", "default"]
    present = order[order.index(top) :]
    args = []
    if "flag" in present:
        args += ["--batch-size", "7"]
    if "vida env" in present:
        monkeypatch.setenv("VIDA_BATCH_SIZE", "6")
    if "legacy env" in present:
        monkeypatch.setenv("MIG_BATCH_SIZE", "5")
    if ".env_local" in present:
        (cwd / ".env_local").write_text("# old framework file\nMIG_BATCH_SIZE=4\n")
    if ".env" in present:
        (cwd / ".env").write_text("VIDA_BATCH_SIZE=3\nVIDA_PROFILE=mine\n")
    if "profile" in present:
        _profile(cwd, "mine", "description = 'test'\nbatch_size = 2\nattempts = 9\n")
        monkeypatch.setenv("VIDA_PROFILE", "mine")
    code, rows, err = _config(capsys, *args)
    assert code == 0, err
    assert rows["batch_size"] == (value, origin)
    if "profile" in present:
        assert rows["attempts"] == ("9", "profile 'mine'")
        assert rows["profile"] == ("mine", "environment VIDA_PROFILE")
    else:
        assert rows["attempts"] == ("3", "default")


def test_vida_names_beat_legacy_names_inside_one_file(capsys: pytest.CaptureFixture[str]) -> None:
    Path(".env_local").write_text("MIG_BATCH_SIZE=5\nVIDA_BATCH_SIZE=6\n")
    code, rows, err = _config(capsys)
    assert code == 0, err
    assert rows["batch_size"] == ("6", ".env_local VIDA_BATCH_SIZE")


def test_env_file_flag_replaces_the_files_of_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(".env_local").write_text("VIDA_JOBS=3\n")
    other = tmp_path / "prod.env"
    other.write_text("VIDA_JOBS=5\n")
    code, rows, _err = _config(capsys, "--env-file", str(other))
    assert code == 0
    assert rows["jobs"] == ("5", f"{other} VIDA_JOBS")
    code, rows, _err = _config(capsys)
    assert rows["jobs"] == ("3", ".env_local VIDA_JOBS")


def test_legacy_names_point_at_the_cosmos_side_of_each_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "GEN_DB_CONNECTION_STRING": f"mongodb://cosmos:{SECRET}@acct.mongo.cosmos.azure.com:10255/?ssl=true&retrywrites=false",
        "GEN_DB_NAME": "orders_db",
        "GEN_DB_COLLECTION": "orders",
        "MIG_TARGET_DB_CONNECTION_STRING": f"mongodb://atlas:{SECRET}@atlas.example:27017/",
        "MIG_TARGET_DB_NAME": "target_db",
        "MIG_TARGET_DB_COLLECTION": "orders_copy",
        "MIG_BATCH_SIZE": "800",
        "GEN_BATCH_SIZE": "4000",
        "GEN_TOTAL_DOCUMENTS": "60000000",
        "FRAMEWORK_PROFILE": "data-migration",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, plan, err = _config(capsys, "--for", "plan")
    assert code == 0, err
    assert plan["source_uri"] == (
        "mongodb://cosmos:***@acct.mongo.cosmos.azure.com:10255/?ssl=true&retrywrites=false",
        "environment GEN_DB_CONNECTION_STRING (legacy name)",
    )
    assert plan["source_db"][0] == "orders_db" and plan["source_collection"][0] == "orders"
    assert plan["target_uri"][0] == "mongodb://atlas:***@atlas.example:27017/"
    assert plan["target_db"][0] == "target_db"
    assert plan["target_collection"][0] == "orders_copy"
    code, run, _err = _config(capsys, "--for", "run")
    assert run["batch_size"] == ("800", "environment MIG_BATCH_SIZE (legacy name)")
    assert run["profile"] == ("data-migration", "environment FRAMEWORK_PROFILE (legacy name)")
    assert run["write_concern"] == ("0", "profile 'data-migration'")
    code, gen, _err = _config(capsys, "--for", "generate")
    assert gen["target_uri"][0].startswith("mongodb://cosmos:***@acct.mongo.cosmos.azure.com")
    assert gen["target_db"][0] == "orders_db" and gen["target_collection"][0] == "orders"
    assert gen["batch_size"] == ("4000", "environment GEN_BATCH_SIZE (legacy name)")
    assert gen["total"] == ("60000000", "environment GEN_TOTAL_DOCUMENTS (legacy name)")
    assert "source_uri" not in gen


def test_config_never_shows_a_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(".env_local").write_text(
        f"GEN_DB_CONNECTION_STRING=mongodb://u:{SECRET}@h1:27017/?authMechanismProperties=TOKEN:{SECRET}\n"
    )
    monkeypatch.setenv("VIDA_TARGET_URI", f"mongodb://t:{SECRET}@h2/?w=0")
    for args in ([], ["--verbose"], ["--for", "verify"]):
        code = main(["config", *args])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert SECRET not in out + err
        assert "u:***@h1" in out


@pytest.mark.parametrize(
    ("setup", "args", "words"),
    [
        (
            {"env": "MIG_BATCH_SIZE=abc"},
            [],
            "MIG_BATCH_SIZE 'abc' (in .env_local) is not a valid --batch-size value: "
            "accepted is a whole number from 1 to 1,000,000",
        ),
        ({}, ["-j", "0"], "--jobs '0' is not a valid value: accepted is a whole number from 1"),
        (
            {"environ": ("VIDA_PROFILE", "nope")},
            [],
            "unknown profile 'nope' (from environment VIDA_PROFILE): "
            "known are data-ingest, data-migration, dev",
        ),
        (
            {"profile": "batch_size = 10\nbatch_sise = 20\n"},
            ["--profile", "bad"],
            "has an unknown setting 'batch_sise': did you mean 'batch_size'?",
        ),
        (
            {"profile": "write_concern = 2\n"},
            ["--profile", "bad"],
            "write_concern '2' (profile 'bad') is not a valid --write-concern value: "
            "accepted is one of 0, 1, majority",
        ),
        ({"profile": "jobs = [\n"}, ["--profile", "bad"], "is not valid TOML"),
        (
            {"environ": ("GEN_DB_CONNECTION_STRING", f"mongodb://u:{SECRET}@/db")},
            [],
            "GEN_DB_CONNECTION_STRING 'mongodb://u:***@/db' (environment, legacy name) "
            "is not a MongoDB URI with a host",
        ),
        ({"env": "this is not a setting"}, [], ".env_local' line 1 is not KEY=VALUE"),
        ({}, ["--env-file", "missing.env"], "--env-file 'missing.env' is not a file"),
        (
            {"environ": ("VIDA_RETRY_WINDOW", "-1")},
            [],
            "VIDA_RETRY_WINDOW '-1' (environment) is not a valid --retry-window value",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_its_source(
    setup: dict[str, object],
    args: list[str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if "env" in setup:
        Path(".env_local").write_text(f"{setup['env']}\n")
    if "environ" in setup:
        name, value = setup["environ"]  # type: ignore[misc]
        monkeypatch.setenv(name, value)
    if "profile" in setup:
        _profile(Path.cwd(), "bad", str(setup["profile"]))
    for command in (["config"], ["run", "--job", "x"]):
        code = main([*command, *args])
        out, err = capsys.readouterr()
        assert code == 2, err
        assert err.count("\n") == 1 and words in err, err
        assert "Traceback" not in err and SECRET not in err
    assert not Path("partitions").exists()


def test_a_misspelt_vida_variable_gets_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIDA_BATCH_SIZ", "10")
    Path(".env").write_text("VIDA_JOBSS=3\n")
    code, rows, err = _config(capsys)
    assert code == 0
    assert (
        "VIDA_BATCH_SIZ (environment) is not a vida-loader setting and is ignored: "
        "did you mean VIDA_BATCH_SIZE?" in err
    )
    assert "VIDA_JOBSS" in err and "did you mean VIDA_JOBS?" in err
    assert rows["batch_size"] == ("1000", "default")


def test_a_w0_target_uri_is_honoured_and_explained(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIDA_TARGET_URI", "mongodb://h2:27017/?w=0")
    code, rows, err = _config(capsys)
    assert rows["write_concern"] == ("0", "w=0 in the target URI")
    assert "the copy path writes that way with --write-concern 0 and then confirms" in err
    code, rows, err = _config(capsys, "--write-concern", "1")
    assert rows["write_concern"] == ("1", "flag --write-concern")


def test_retry_writes_on_a_cosmos_uri_is_explained(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "GEN_DB_CONNECTION_STRING", "mongodb://acct.mongo.cosmos.azure.com:10255/?retryWrites=true"
    )
    code, _rows, err = _config(capsys)
    assert code == 0
    assert "sets retryWrites=true, which Cosmos DB accounts on API 3.6 refuse" in err


def test_profiles_list_show_and_check(capsys: pytest.CaptureFixture[str]) -> None:
    _profile(Path.cwd(), "nightly", "description = 'Nightly refresh'\njobs = 3\nbatch_size = 500\n")
    _profile(Path.cwd(), "dev", "description = 'My dev'\nbatch_size = 5\n")
    assert main(["profiles", "list"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["data-ingest", "data-migration", "dev", "nightly"]
    assert "My dev" in out and "project" in out  # ./profiles/dev.toml shadows the built-in
    assert main(["profiles", "show", "nightly"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  jobs\s+3\s+profile 'nightly'$", out, re.M)
    assert re.search(r"^  batch_size\s+500\s+profile 'nightly'$", out, re.M)
    assert re.search(r"^  attempts\s+3\s+default$", out, re.M)
    assert main(["profiles", "check", "nightly"]) == 0
    assert "is valid: 2 settings" in capsys.readouterr().out
    _profile(Path.cwd(), "broken", "batch_size = 0\n")
    assert main(["profiles", "check", "broken"]) == 2
    err = capsys.readouterr().err
    assert "batch_size '0' (profile 'broken') is not a valid --batch-size value" in err


def test_user_profiles_come_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "xdg"
    (home / "vida-loader" / "profiles").mkdir(parents=True)
    (home / "vida-loader" / "profiles" / "team.toml").write_text("retry_window = 42\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    code, rows, err = _config(capsys, "--profile", "team")
    assert code == 0, err
    assert rows["retry_window"] == ("42", "profile 'team'")


def test_the_shipped_env_example_lists_every_setting_and_parses() -> None:
    from vida_loader.settings.registry import COMMANDS, SPECS, Layer
    from vida_loader.settings.resolve import example_env_file, read_env_file, resolve

    shipped = Path(__file__).parents[2] / ".env_local.example"
    assert shipped.read_text() == example_env_file(), "regenerate .env_local.example"
    for spec in SPECS:
        assert f"# {spec.envvar}=" in shipped.read_text()
    # Uncommented, every example line is a valid setting file.
    uncommented = "\n".join(
        line[2:] for line in shipped.read_text().splitlines() if line.startswith("# VIDA_")
    )
    Path(".env_local").write_text(uncommented + "\n")
    assert "VIDA_BATCH_SIZE" in read_env_file(Path(".env_local"))
    for command in COMMANDS:  # empty values count as not set
        s = resolve(command, environ={})
        key = (
            "job"
            if command in ("status", "report")
            else "source_uri"
            if command == "dump"
            else "target_uri"
        )
        assert s.origin(key).layer in (
            Layer.ENV_FILE,
            Layer.DEFAULT,
        )


def test_out_on_the_command_line_beats_a_target_from_env_local(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path(".env_local").write_text(
        "GEN_DB_CONNECTION_STRING=mongodb://127.0.0.1:1/?directConnection=true\n"
        "GEN_DB_NAME=gen\nGEN_DB_COLLECTION=orders\nGEN_TOTAL_DOCUMENTS=1500\n"
    )
    code = main(["generate", "-j", "1", "--seed", "2", "--out", "orders.bson"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "generated 1,500 of 1,500" in out and "into 'orders.bson'" in out
    assert Path("orders.bson").stat().st_size > 1500 * 500
    # Given on the command line, both at once are still refused.
    code = main(["generate", "--out", "x.bson", "--target-db", "gen"])
    assert code == 2
    assert "give either --out" in capsys.readouterr().err
