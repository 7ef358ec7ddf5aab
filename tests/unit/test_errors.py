"""Errors carry structured fields (value, setting, fix) besides their one line, and keep
them across a process boundary."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from vida_loader.config import check_job_name, check_namespace
from vida_loader.errors import (
    EXIT_STATE,
    EXIT_USAGE,
    SettingError,
    StateError,
    UsageError,
    VidaError,
)
from vida_loader.settings.resolve import resolve


def test_the_line_is_the_message_then_the_fix() -> None:
    err = UsageError("--jobs '0' is too few", value=0, setting="--jobs", fix="give 1 or more")
    assert err.line() == str(err) == "--jobs '0' is too few: give 1 or more"
    assert VidaError("plain").line() == "plain"


@pytest.mark.parametrize(
    "err",
    [
        UsageError("bad", value="a/b", setting="--target-db", fix="no slash"),
        StateError("torn", fix="re-plan"),
        SettingError("x", value="0", setting="--partitions", fix="accepted is 1+"),
    ],
)
def test_fields_survive_pickling(err: VidaError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert back.fields() == err.fields() and back.line() == err.line()


def test_name_checks_say_which_value_and_setting() -> None:
    with pytest.raises(UsageError) as info:
        check_namespace("target", "a/b", "orders")
    assert (info.value.value, info.value.setting) == ("a/b", "--target-db")
    assert info.value.fix and "/" in info.value.fix
    with pytest.raises(UsageError) as info:
        check_namespace("source", "d", "system.users")
    assert (info.value.value, info.value.setting) == ("system.users", "--source-collection")
    with pytest.raises(UsageError) as info:
        check_job_name("../x")
    assert info.value.fields() == {
        "error": "UsageError",
        "message": "--job '../x' is not a usable job name",
        "value": "../x",
        "setting": "--job",
        "fix": "use letters, digits, '.', '_' and '-'",
        "exit_code": EXIT_USAGE,
    }


def test_a_bad_setting_names_its_flag_value_and_accepted_values(tmp_path: Path) -> None:
    with pytest.raises(SettingError) as info:
        resolve("plan", {}, environ={"VIDA_PARTITIONS": "zero"}, cwd=tmp_path)
    err = info.value
    assert (err.value, err.setting) == ("zero", "--partitions")
    assert err.fix == "accepted is a whole number at least 1"
    assert "VIDA_PARTITIONS 'zero' (environment)" in err.message
    assert StateError("x").exit_code == EXIT_STATE
