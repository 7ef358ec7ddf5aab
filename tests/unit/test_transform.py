"""Transform plugins: loading errors are one line naming file and line; ``apply`` reshapes,
drops and rejects; the ``_id`` is guarded; an identity transform keeps every byte."""

from __future__ import annotations

from pathlib import Path

import bson
import pytest
from bson.raw_bson import RawBSONDocument

from tests.support import every_type_documents
from vida_loader.errors import PluginError
from vida_loader.transform.plugin import IdChangedError, Outcomes, ignoring, load_transform
from vida_loader.transform.spec import TransformSpec, transform_change

RENAME = """
import datetime


class Rename:
    def transform(self, doc):
        if doc.get("test"):
            return None
        doc["customer_name"] = doc.pop("name")
        doc["migrated_at"] = datetime.datetime(2026, 1, 1)
        return doc

    def validate(self, doc):
        if doc.get("amount", 0) < 0:
            return f"negative amount {doc['amount']}"
        return None
"""


def write(tmp_path: Path, text: str, name: str = "t.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def raw(doc: dict) -> RawBSONDocument:
    return RawBSONDocument(bson.encode(doc))


def test_rename_drop_and_reject(tmp_path: Path) -> None:
    t = load_transform(str(write(tmp_path, RENAME)))
    assert t.decodes and t.filter is None and t.spec.class_name == "Rename"
    out = t.apply(raw({"_id": 1, "name": "Ada", "amount": 5}))
    assert isinstance(out, RawBSONDocument)
    assert list(bson.decode(out.raw)) == ["_id", "amount", "customer_name", "migrated_at"]
    assert t.apply(raw({"_id": 2, "name": "x", "test": True})) is None
    assert t.apply(raw({"_id": 3, "name": "x", "amount": -2})) == "negative amount -2"
    assert t.apply(raw({"_id": 4})) == "transform raised KeyError: 'name'"


def test_changed_id_is_refused_and_a_missing_id_is_the_sources(tmp_path: Path) -> None:
    text = """
class T:
    def transform(self, doc):
        if doc["_id"] == 1:
            return {"_id": 1.0, "x": 1}
        return {"x": doc["_id"]}
"""
    t = load_transform(str(write(tmp_path, text)))
    with pytest.raises(IdChangedError, match=r"changed _id 1 to 1\.0"):
        t.apply(raw({"_id": 1}))
    out = t.apply(raw({"_id": "k", "y": 2}))
    assert isinstance(out, RawBSONDocument)
    assert bson.decode(out.raw) == {"_id": "k", "x": "k"}


def test_identity_transform_keeps_every_byte(tmp_path: Path) -> None:
    t = load_transform(
        str(write(tmp_path, "class T:\n    def transform(self, doc):\n        return doc\n"))
    )
    for doc in every_type_documents():
        source = raw(doc)
        out = t.apply(source)
        assert isinstance(out, RawBSONDocument) and out.raw == source.raw, doc["_id"]


def test_filter_and_projection_alone_keep_documents_raw(tmp_path: Path) -> None:
    text = """
class Keep:
    filter = {"service_type": {"$in": ["repair"]}}

    def projection(self):
        return {"notes": 0}
"""
    t = load_transform(str(write(tmp_path, text)))
    assert not t.decodes
    assert t.filter == {"service_type": {"$in": ["repair"]}} and t.projection == {"notes": 0}
    source = raw({"_id": 1})
    assert t.apply(source) is source


def test_outcomes_count_and_keep_rejects_up_to_the_limit(tmp_path: Path) -> None:
    t = load_transform(str(write(tmp_path, RENAME)))
    docs = [
        raw({"_id": i, "name": "n", "amount": -1 if i % 2 else 1, "test": i == 4})
        for i in range(10)
    ]
    seen = Outcomes(keep_rejects=3)
    kept = list(seen.stream(docs, t))
    assert (seen.read, seen.dropped, seen.rejected, len(kept)) == (10, 1, 5, 4)
    assert [bson.decode(r.raw)["_id"] for r in seen.rejects] == [1, 3, 5]
    assert seen.rejects[0].reason == "negative amount -1"
    assert bson.encode({"_id": 4}) in seen.refused and len(seen.refused) == 6


@pytest.mark.parametrize(
    ("text", "spec", "words"),
    [
        (None, "", "--transform '{path}': no such Python file"),
        ("class T:\n    def transform(self, doc)\n", "", "{path}:2: syntax error"),
        (
            "x = 1\n\nraise RuntimeError('boom')\n",
            "",
            "{path}:3: loading failed: RuntimeError: boom",
        ),
        ("class T:\n    pass\n", "", "{path} defines no transform class"),
        ("class T:\n    pass\n", ":Other", "{path} defines no class 'Other'"),
        (
            "class A:\n    filter = {}\n\n\nclass B:\n    def validate(self, d):\n        pass\n",
            "",
            "{path} defines A (line 1) and B (line 5): name one with --transform {path}:ClassName",
        ),
        (
            "class T:\n    x = 1\n\n    def transform(self):\n        return {}\n",
            "",
            "{path}:1: T.transform() at line 4 must take one document: def transform(self, doc)",
        ),
        (
            "class T:\n    def __init__(self, seed):\n        pass\n\n    filter = {}\n",
            "",
            "{path}:1: T() failed: TypeError",
        ),
        ("class T:\n    projection = {'_id': 0}\n", "", "leaves out _id"),
        ("class T:\n    filter = [1]\n", "", "{path}:1: T.filter is list, not a document"),
        ("class T:\n    verify_ignore = 'at'\n", "", "T.verify_ignore is str: give field"),
        ("class T:\n    verify_ignore = ('a.b',)\n", "", "holds 'a.b': top-level field names"),
    ],
)
def test_loading_errors_name_the_file_and_line(
    tmp_path: Path, text: str | None, spec: str, words: str
) -> None:
    path = tmp_path / "bad.py"
    if text is not None:
        path.write_text(text)
    with pytest.raises(PluginError) as info:
        load_transform(f"{path}{spec}")
    message = str(info.value)
    assert words.format(path=path) in message
    assert "\n" not in message


def test_a_named_class_is_taken_among_several(tmp_path: Path) -> None:
    text = "class A:\n    filter = {'a': 1}\n\n\nclass B:\n    filter = {'b': 1}\n"
    path = write(tmp_path, text, "two.py")
    assert load_transform(f"{path}:B").filter == {"b": 1}


def test_change_is_named_by_class_and_content_not_place() -> None:
    a = TransformSpec("/x/t.py", "T", "a" * 64)
    assert transform_change(a, TransformSpec("/y/t.py", "T", "a" * 64)) is None
    assert transform_change(None, None) is None
    assert transform_change(a, None) == f"transform t.py:T (sha256 {'a' * 12}) -> none"
    assert transform_change(a, TransformSpec("/x/t.py", "U", "a" * 64)) == "transform class T -> U"
    changed = transform_change(a, TransformSpec("/x/t.py", "T", "b" * 64))
    assert changed == f"transform file t.py changed (sha256 {'a' * 12} -> {'b' * 12})"
    assert TransformSpec.from_json(a.to_json()) == a


def test_verify_ignore_leaves_out_top_level_fields_only_where_present() -> None:
    doc = bson.encode({"_id": 1, "a": {"migrated_at": 1}, "migrated_at": 2, "z": 3})
    assert bson.decode(ignoring(doc, ("migrated_at",))) == {
        "_id": 1,
        "a": {"migrated_at": 1},
        "z": 3,
    }
    plain = bson.encode({"_id": 1, "z": 3})
    assert ignoring(plain, ("migrated_at",)) is plain  # not decoded: the same bytes
    assert ignoring(doc, ()) is doc
