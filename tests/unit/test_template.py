"""JSON templates: every placeholder, nesting, references, conditions, errors with file:line."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import bson
import orjson
import pytest
from bson import Decimal128, ObjectId

from vida_loader.errors import TemplateError, UsageError
from vida_loader.generate.service_orders import vin_check_digit
from vida_loader.generate.sources import TEMPLATES_DIR, list_templates, resolve_source
from vida_loader.generate.template import Template


def compile_(tmp_path: Path, tree: Any, seed: int = 1, raw: str | None = None) -> Template:
    path = tmp_path / "t.json"
    path.write_text(
        raw if raw is not None else orjson.dumps(tree, option=orjson.OPT_INDENT_2).decode()
    )
    return Template(path, seed)


def docs(t: Template, n: int = 300) -> list[dict[str, Any]]:
    return [bson.decode(d) for d in t.encode_range(0, n)]


def test_scalar_placeholders_give_typed_values_in_range(tmp_path: Path) -> None:
    t = compile_(
        tmp_path,
        {
            "n": "{{int 1 6}}",
            "f": "{{float 0.5 1.5 2}}",
            "d": "{{decimal 10 5000 2}}",
            "c": "{{choice A 'B C' 7}}",
            "b": "{{bool 0.25}}",
            "when": "{{date 2020-01-01 2020-12-31}}",
            "oid": "{{objectid}}",
            "i": "{{seq}}",
            "padded": "{{seq 6}}",
            "text": "order {{seq}} of {{choice x}}",
            "plain": 3,
            "nested": {"deep": ["{{int 7 7}}", "lit"]},
        },
    )
    out = docs(t)
    assert {d["n"] for d in out} == {1, 2, 3, 4, 5, 6}
    assert all(0.5 <= d["f"] <= 1.5 and round(d["f"], 2) == d["f"] for d in out)
    for d in out:
        value = d["d"].to_decimal()
        assert Decimal(10) <= value <= Decimal(5000) and value.as_tuple().exponent == -2
    assert {d["c"] for d in out} == {"A", "B C", 7}
    assert 30 < sum(d["b"] for d in out) < 120
    lo, hi = datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1)
    assert all(lo <= d["when"] < hi for d in out)
    assert len({d["oid"] for d in out}) == 300 and isinstance(out[0]["oid"], ObjectId)
    assert [d["i"] for d in out[:3]] == [0, 1, 2] and out[12]["padded"] == "000012"
    assert out[4]["text"] == "order 4 of x"
    assert out[0]["plain"] == 3 and out[0]["nested"] == {"deep": [7, "lit"]}


def test_id_comes_first_grows_with_the_index_and_a_given_id_is_kept(tmp_path: Path) -> None:
    out = docs(compile_(tmp_path, {"a": 1}), 50)
    assert all(next(iter(d)) == "_id" for d in out)
    ids = [d["_id"] for d in out]
    assert ids == sorted(ids) and len(set(ids)) == 50
    given = docs(compile_(tmp_path, {"a": 1, "_id": "{{seq}}"}), 3)
    assert [list(d) for d in given] == [["_id", "a"]] * 3 and given[2]["_id"] == 2


def test_arrays_references_and_computed_totals(tmp_path: Path) -> None:
    t = compile_(
        tmp_path,
        {
            "items": [
                "{{array 1 5}}",
                {"q": "{{int 1 4}}", "price": "{{decimal 1 100 2}}", "total": "{{mul q price}}"},
            ],
            "net": "{{sum items.total}}",
            "tax": "{{pct 25 net}}",
            "gross": "{{add net tax}}",
            "copy": "{{ref net}}",
            "count_twice": "{{mul 2 3}}",
        },
    )
    for d in docs(t):
        assert 1 <= len(d["items"]) <= 5
        net = Decimal(0)
        for it in d["items"]:
            assert it["total"].to_decimal() == it["q"] * it["price"].to_decimal()
            net += it["total"].to_decimal()
        assert d["net"].to_decimal() == net and d["copy"] == d["net"]
        tax = (net * Decimal("0.25")).quantize(Decimal("0.01"), "ROUND_HALF_UP")
        assert d["tax"].to_decimal() == tax
        assert d["gross"].to_decimal() == net + tax
        assert d["count_twice"] == 6


def test_conditions_and_dates_after_a_field(tmp_path: Path) -> None:
    t = compile_(
        tmp_path,
        {
            "status": "{{choice open done}}",
            "start": "{{date 2021-01-01 2021-02-01}}",
            "end": "{{date_after start 1 2 | if status done}}",
            "reminder": "{{int 1 1 | unless status done}}",
        },
    )
    out = docs(t)
    assert {d["status"] for d in out} == {"open", "done"}
    for d in out:
        if d["status"] == "done":
            assert "reminder" not in d
            gap = d["end"] - d["start"]
            assert datetime.timedelta(days=1) <= gap <= datetime.timedelta(days=2)
        else:
            assert "end" not in d and d["reminder"] == 1


def test_faker_pools_vin_plate_phone_and_locale(tmp_path: Path) -> None:
    t = compile_(
        tmp_path,
        {
            "$locale": "sv_SE",
            "name": "{{faker.name}}",
            "city": "{{faker.city}}",
            "year": "{{int 2005 2019}}",
            "vin": "{{vin year}}",
            "plate": "{{plate_se}}",
            "phone": "{{phone_se}}",
        },
    )
    out = docs(t)
    assert len({d["name"] for d in out}) > 200
    assert all(d["vin"][8] == vin_check_digit(d["vin"]) and d["vin"][:3] == "YV1" for d in out)
    assert all(d["phone"].startswith("+46 7") and len(d["plate"]) == 7 for d in out)
    assert "$locale" not in out[0]


def test_same_seed_same_bytes_any_slicing(tmp_path: Path) -> None:
    tree = {"n": "{{int 0 1000000}}", "name": "{{faker.name}}", "x": ["{{array 0 3}}", "{{seq}}"]}
    a = compile_(tmp_path, tree, seed=5)
    b = compile_(tmp_path, tree, seed=5)
    whole = a.encode_range(0, 3000)
    assert b.encode_range(1020, 1030) == whole[1020:1030]
    assert compile_(tmp_path, tree, seed=6).encode_range(0, 5) != whole[:5]


BAD = [
    ('{\n  "a": 1,\n  "b": "{{bogus 1}}"\n}', ":3: {{bogus 1}}: unknown placeholder 'bogus'"),
    ('{\n  "a": "{{int 5}}"\n}', ":2: {{int 5}}: takes 2 arguments, got 1"),
    ('{\n  "a": "{{int x y}}"\n}', ":2: {{int x y}}: needs 2 whole numbers"),
    ('{\n  "a": "{{faker.nope}}"\n}', ":2: {{faker.nope}}: faker has no provider 'nope'"),
    ('{\n  "a": "{{date 2020-13-01 2021-01-01}}"\n}', "'2020-13-01' is not a date"),
    ('{\n  "a": ["{{array 1 2}}"]\n}', ':2: {{array 1 2}}: write ["{{array MIN MAX}}", ITEM]'),
    ('{\n  "a": "x {{int 1 2"\n}', ":2: x {{int 1 2: '{{' without a closing '}}'"),
    ('{\n  "a": 1,\n  "b": "{{int 1 2 | when a 1}}"\n}', ":3: {{int 1 2 | when a 1}}: a condition"),
    ('{\n  "a": 1,\n  "a2": 2,\n  "$nope": 1\n}', ":4: unknown setting '$nope'"),
    ('{\n  "a": 1,\n  "b": \n}', ":4: not valid JSON: Expecting value (column 1)"),
    ("[1, 2]", ":1: a template is a JSON object"),
    ('{\n  "a": "{{choice}}"\n}', ":2: {{choice}}: choice needs at least one value"),
]


@pytest.mark.parametrize(("text", "words"), BAD)
def test_errors_name_file_line_and_placeholder(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(TemplateError) as err:
        compile_(tmp_path, None, raw=text)
    assert str(err.value).startswith(str(tmp_path / "t.json")), err.value
    assert words in str(err.value)


def test_a_field_used_before_it_is_set_is_named(tmp_path: Path) -> None:
    t = compile_(tmp_path, {"total": "{{mul q 2}}", "q": "{{int 1 2}}"})
    with pytest.raises(TemplateError, match=r"field 'q' is not set before it is used"):
        t.encode_range(0, 1)


def test_the_same_placeholder_twice_gets_the_line_of_each(tmp_path: Path) -> None:
    text = '{\n  "a": "{{int 1 2}}",\n  "b": "{{int 1 2}}",\n  "c": "{{int 9}}"\n}'
    with pytest.raises(TemplateError, match=r"t\.json:4: \{\{int 9\}\}"):
        compile_(tmp_path, None, raw=text)


def test_shipped_service_order_template_keeps_the_money_invariants() -> None:
    assert [name for name, _ in list_templates()] == ["service_order.json"]
    spec = resolve_source("service_order.json")  # found among the shipped ones
    assert Path(spec) == TEMPLATES_DIR / "service_order.json"
    out = [bson.decode(d) for d in Template(Path(spec), 3).encode_range(0, 500)]
    for d in out:
        labor = sum(it["labor_total"].to_decimal() for it in d["service_items"])
        parts = sum(it["parts_total"].to_decimal() for it in d["service_items"])
        assert d["labor_cost"].to_decimal() == labor and d["parts_cost"].to_decimal() == parts
        tax = ((labor + parts) * Decimal("0.25")).quantize(Decimal("0.01"), "ROUND_HALF_UP")
        assert d["tax_amount"].to_decimal() == tax
        assert d["total_amount"] == Decimal128(labor + parts + tax)
        assert d["order_date"] <= d["service_date"] <= d["updated_at"]
        assert ("completion_date" in d) == (d["status"] in ("completed", "invoiced", "closed"))
        vin = d["vehicle"]["vin"]
        assert vin[8] == vin_check_digit(vin)


def test_unknown_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such template file"):
        resolve_source(str(tmp_path / "missing.json"))
    with pytest.raises(UsageError, match="neither a built-in generator"):
        resolve_source("orders")
