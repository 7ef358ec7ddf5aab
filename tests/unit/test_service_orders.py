"""The built-in service-order generator: invariants on 10k documents, determinism."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson import Decimal128
from bson.codec_options import CodecOptions

from vida_loader.generate import BLOCK
from vida_loader.generate.runner import GenerateProgress, plan_slices
from vida_loader.generate.service_orders import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    SERVICE_TYPES,
    ServiceOrders,
    vin_check_digit,
    year_code,
)
from vida_loader.report.progress import format_generate

OPTS: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)
PLATE = re.compile(r"^[A-HJ-PR-UW-Z]{3} [0-9]{2}[0-9A-HJ-NPR-UW-Z]$")
PHONE = re.compile(r"^\+46 7[0-9] [0-9]{3} [0-9]{2} [0-9]{2}$")


@pytest.fixture(scope="module")
def gen() -> ServiceOrders:
    return ServiceOrders(7, pool_size=3000)


@pytest.fixture(scope="module")
def raw_docs(gen: ServiceOrders) -> list[bytes]:
    return gen.encode_range(0, 10_000)


@pytest.fixture(scope="module")
def docs(raw_docs: list[bytes]) -> list[dict[str, Any]]:
    return [bson.decode(d, OPTS) for d in raw_docs]


def cents(value: Decimal128) -> int:
    d = value.to_decimal()
    assert d.as_tuple().exponent == -2, f"money {d} is not rounded to cents"
    return int(d * 100)


def test_known_vins_have_a_valid_check_digit() -> None:
    # published examples of the North American check digit (49 CFR 565)
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"
    assert vin_check_digit("11111111111111111") == "1"
    assert vin_check_digit("1HGCM82633A004352") == "3"
    assert year_code(2010) == "A" and year_code(2019) == "K" and year_code(2005) == "5"


def test_documents_are_1_to_2_kb_and_order_ids_unique(
    raw_docs: list[bytes], docs: list[dict[str, Any]]
) -> None:
    sizes = sorted(len(d) for d in raw_docs)
    assert 1000 <= sizes[len(sizes) // 2] <= 1400, "median size"
    assert 1000 <= sum(sizes) / len(sizes) <= 1500, "mean size"
    assert len({d["order_id"] for d in docs}) == len(docs)
    assert len({d["_id"] for d in docs}) == len(docs)
    ids = [d["_id"] for d in docs]
    assert ids == sorted(ids), "_ids grow with the document index"


def test_every_document_holds_the_invariants(docs: list[dict[str, Any]]) -> None:
    statuses: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for d in docs:
        statuses[d["status"]] += 1
        types[d["service_type"]] += 1
        assert d["service_type"] in SERVICE_TYPES
        v = d["vehicle"]
        vin = v["vin"]
        assert len(vin) == 17 and vin.startswith("YV1") and not set(vin) & set("IOQ")
        assert vin[8] == vin_check_digit(vin), vin
        assert vin[9] == year_code(v["year"]), (vin, v["year"])
        assert PLATE.match(v["license_plate"]), v["license_plate"]
        age_years = (d["service_date"].year - v["year"]) + 1
        assert 0 < v["mileage"] <= age_years * 36_000, (v["mileage"], v["year"])
        c = d["customer"]
        assert PHONE.match(c["phone"]), c["phone"]
        assert "@" in c["email"] and c["name"] and c["address"]["city"]
        items = d["service_items"]
        assert 1 <= len(items) <= 8
        labor_parts = 0
        for it in items:
            assert cents(it["total_price"]) == it["quantity"] * cents(it["unit_price"])
            assert it["labor_hours"] > 0 and isinstance(it["parts_used"], list)
            labor_parts += cents(it["total_price"])
        labor, parts, tax = cents(d["labor_cost"]), cents(d["parts_cost"]), cents(d["tax_amount"])
        assert labor + parts == labor_parts
        net = Decimal(labor + parts) / 100
        assert Decimal(tax) / 100 == (net * Decimal("0.25")).quantize(
            Decimal("0.01"), "ROUND_HALF_UP"
        )
        assert cents(d["total_amount"]) == labor + parts + tax
        assert d["order_date"] <= d["service_date"]
        assert d["created_at"] <= d["updated_at"]
        if d["status"] in OPEN_STATUSES:
            assert "completion_date" not in d
        else:
            assert d["status"] in CLOSED_STATUSES
            assert d["service_date"] <= d["completion_date"] <= d["updated_at"]
        w = d["warranty_info"]
        assert w["covered"] == (d["service_date"] < w["expiry_date"])
        assert (w["warranty_type"] == "none") == (not w["covered"])
    assert set(statuses) == set(OPEN_STATUSES + CLOSED_STATUSES)
    assert len(types) == len(SERVICE_TYPES)


def test_document_i_depends_only_on_seed_and_i(gen: ServiceOrders, raw_docs: list[bytes]) -> None:
    again = ServiceOrders(7, pool_size=3000)
    # any slicing of the index range gives the same bytes for the same index
    assert again.encode_range(BLOCK - 3, BLOCK + 5) == raw_docs[BLOCK - 3 : BLOCK + 5]
    assert again.encode_range(9_999, 10_000) == raw_docs[9_999:]
    other = ServiceOrders(8, pool_size=3000)
    assert other.encode_range(0, 10) != raw_docs[:10]


def test_generate_progress_lines() -> None:
    def snap(**kw: Any) -> GenerateProgress:
        base = dict(docs=50_000, bytes=70_000_000, total=200_000, elapsed=2.0, retries=0)
        base.update(throttled=0, confirmed=40_000, failed_slices=0)
        base.update(kw)
        return GenerateProgress(**base)  # type: ignore[arg-type]

    line = format_generate(snap())
    assert line.startswith("50,000/200,000 docs (25%)  25,000 docs/s  35.0 MB/s")
    assert line.endswith("ETA 0:00:06")
    throttled = format_generate(snap(retries=5, throttled=3, failed_slices=1))
    assert "retries 5 (3 throttled)" in throttled and "1 slices failed" in throttled
    done = format_generate(snap(docs=200_000, confirmed=200_000))
    assert done.endswith("in 0:00:02")
    checking = format_generate(snap(docs=200_000, phase="confirming"))
    assert checking.endswith("confirming on the target (40,000 confirmed)")


@pytest.mark.parametrize(
    ("total", "jobs", "to_file"),
    [(150_000, 2, False), (5, 4, False), (50_000, 8, True), (10**7, 12, False)],
)
def test_slices_cover_the_range_in_whole_blocks(total: int, jobs: int, to_file: bool) -> None:
    bounds = plan_slices(total, jobs, to_file)
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert all(start % BLOCK == 0 for start, _ in bounds)
    sizes = [stop - start for start, stop in bounds[:-1]]
    assert sizes == sorted(sizes, reverse=True), "long tasks first, short ones at the end"
    assert max(sizes, default=0) <= 16 * BLOCK
