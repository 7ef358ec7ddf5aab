"""Python plugins: the documented interface works, every loading error is one clear line."""

from __future__ import annotations

from pathlib import Path

import bson
import pytest

from vida_loader.errors import PluginError, UsageError
from vida_loader.generate.plugin import Plugin
from vida_loader.generate.sources import load_source, resolve_source

GOOD = """
import bson


class Generator:
    description = "numbers and their squares"

    def __init__(self, seed):
        self.offset = seed * 1000

    def generate(self, rng, i):
        n = rng.randint(1, 100)
        return {"i": i, "n": n, "square": n * n, "base": self.offset}


class Raw:
    def generate(self, rng, i):
        return bson.encode({"_id": i, "x": rng.random()})


class NoId:
    def generate(self, rng, i):
        return bson.encode({"x": i})
"""


def plugin_file(tmp_path: Path, text: str = GOOD) -> Path:
    path = tmp_path / "gen.py"
    path.write_text(text)
    return path


def test_plugin_documents_follow_the_seed_and_get_an_id_first(tmp_path: Path) -> None:
    spec = resolve_source(str(plugin_file(tmp_path)))
    source = load_source(spec, 7)
    out = [bson.decode(d) for d in source.encode_range(0, 2000)]
    assert [list(d)[0] for d in out[:3]] == ["_id"] * 3
    assert all(d["square"] == d["n"] ** 2 and d["base"] == 7000 for d in out)
    ids = [d["_id"] for d in out]
    assert ids == sorted(ids) and len(set(ids)) == 2000
    again = Plugin(spec, 7).encode_range(1500, 1510)
    assert again == source.encode_range(0, 2000)[1500:1510]
    assert Plugin(spec, 8).encode_range(0, 5) != source.encode_range(0, 5)


def test_a_named_class_returning_bson_bytes(tmp_path: Path) -> None:
    path = plugin_file(tmp_path)
    raw = Plugin(resolve_source(f"{path}:Raw"), 1).encode_range(0, 3)
    assert [bson.decode(d)["_id"] for d in raw] == [0, 1, 2]
    no_id = [bson.decode(d) for d in Plugin(f"{path}:NoId", 1).encode_range(0, 2)]
    assert list(no_id[1]) == ["_id", "x"] and no_id[1]["x"] == 1


@pytest.mark.parametrize(
    ("text", "spec_suffix", "words"),
    [
        ("def broken(:\n    pass\n", "", ":1: syntax error"),
        ("x = 1\nraise RuntimeError('no db')\n", "", ":2: loading failed: RuntimeError: no db"),
        ("import not_a_module_xyz\n", "", ":1: loading failed: ModuleNotFoundError"),
        ("x = 1\n", "", "defines no class 'Generator'"),
        (GOOD, ":Missing", "defines no class 'Missing'"),
        ("class Generator:\n    pass\n", "", "Generator has no method generate(self, rng, i)"),
        (
            "class Generator:\n    def __init__(self, seed):\n        raise ValueError('bad')\n"
            "    def generate(self, rng, i):\n        return {}\n",
            "",
            "Generator(seed) failed: ValueError: bad",
        ),
    ],
)
def test_loading_errors_are_one_line(
    tmp_path: Path, text: str, spec_suffix: str, words: str
) -> None:
    path = plugin_file(tmp_path, text)
    with pytest.raises(PluginError) as err:
        Plugin(f"{path}{spec_suffix}", 1)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("return [1, 2]", "returned list, not a dict or BSON bytes"),
        ("return 1 / 0", "generate(rng, 0) failed: ZeroDivisionError"),
        ("return {'x': object()}", "document 0 cannot be stored as BSON"),
        ("return b'nonsense'", "bytes that are not one BSON document"),
    ],
)
def test_bad_documents_are_named(tmp_path: Path, body: str, words: str) -> None:
    text = f"class Generator:\n    def generate(self, rng, i):\n        {body}\n"
    source = Plugin(str(plugin_file(tmp_path, text)), 1)
    with pytest.raises(PluginError, match=words.replace("(", r"\(").replace(")", r"\)")):
        source.encode_range(0, 1)


def test_missing_plugin_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such plugin file"):
        resolve_source(str(tmp_path / "nope.py"))
