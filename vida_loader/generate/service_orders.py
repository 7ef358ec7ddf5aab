"""The built-in ``service-orders`` generator: car-dealer workshop orders, about 1.1 KB each.

Speed comes from doing the expensive work once per process: faker fills pools of names,
streets and cities; customers, vehicles and every (catalog operation, quantity) service
item are built and the items encoded to BSON once. A document then costs a few dozen
draws from ``random.Random`` plus one ``bson.encode`` (C), never a faker call.

Determinism: the pools depend on the seed only, and document ``i`` is drawn from an RNG
seeded with (seed, block of ``i``), generated from the block's first document. So
document ``i`` is a function of (seed, ``i``) whatever worker produces it.

Invariants (checked by tests): VINs start with ``YV1`` and carry a valid ISO 3779 check
digit and the model-year code of ``vehicle.year``; mileage grows with the vehicle's age;
``total_price = quantity * unit_price`` per item; ``labor_cost + parts_cost`` is the sum of
the items' totals; ``tax_amount`` is 25 % VAT rounded to the cent; ``total_amount`` =
labor + parts + tax; ``order_date <= service_date <= completion_date``; an open order has
no ``completion_date``; ``created_at <= updated_at``; ``order_id`` is unique.
"""

from __future__ import annotations

import random
import struct
import unicodedata
from collections.abc import Callable
from typing import Any

import bson
from bson import Decimal128
from bson.datetime_ms import DatetimeMS
from bson.raw_bson import RawBSONDocument

from vida_loader.generate import STEP_MS, BlockSource, growing_id, index_ms

NAME = "service-orders"
DESCRIPTION = "car-dealer workshop orders (~1.1 KB): customer, vehicle with VIN, items, SEK money"

DAY_MS = 86_400_000
YEAR_MS = 31_556_952_000  # mean Gregorian year
LABOR_RATE_CENTS = 129_500  # SEK 1,295.00 per hour, the workshop price list
VAT_PERCENT = 25

SERVICE_TYPES = (
    "annual_service", "oil_change", "brake_service", "tire_change", "wheel_alignment",
    "battery_replacement", "ac_service", "timing_belt", "clutch_repair", "exhaust_repair",
    "suspension_repair", "diagnostics", "windshield_replacement", "inspection_prep",
    "hv_battery_check", "software_update", "coolant_flush", "transmission_service",
    "spark_plugs", "fuel_system", "headlight_adjustment", "wiper_replacement",
    "rust_protection", "paint_repair", "dent_repair", "interior_cleaning",
    "towbar_installation", "recall_campaign", "warranty_repair", "tire_storage",
)  # fmt: skip
OPEN_STATUSES = ("scheduled", "checked_in", "in_progress", "waiting_for_parts")
CLOSED_STATUSES = ("completed", "invoiced", "closed")
STATUSES = OPEN_STATUSES + CLOSED_STATUSES
STATUS_WEIGHTS = (4, 3, 5, 2, 20, 25, 41)
CUSTOMER_TYPES = ("private", "private", "private", "business", "fleet", "leasing")
# (model, first model year, engine types)
MODELS = (
    ("V70", 2005, ("petrol", "diesel")),
    ("S80", 2005, ("petrol", "diesel")),
    ("XC70", 2005, ("diesel", "petrol")),
    ("XC90", 2005, ("diesel", "petrol", "plug_in_hybrid")),
    ("V50", 2005, ("petrol", "diesel")),
    ("C30", 2007, ("petrol", "diesel")),
    ("S60", 2010, ("petrol", "diesel", "plug_in_hybrid")),
    ("V60", 2011, ("diesel", "petrol", "plug_in_hybrid")),
    ("V40", 2012, ("petrol", "diesel")),
    ("XC60", 2009, ("diesel", "petrol", "plug_in_hybrid", "mild_hybrid")),
    ("V90", 2016, ("diesel", "petrol", "plug_in_hybrid")),
    ("S90", 2016, ("petrol", "plug_in_hybrid")),
    ("XC40", 2018, ("petrol", "mild_hybrid", "plug_in_hybrid", "electric")),
)
COLORS = (
    "Crystal White", "Onyx Black", "Bright Silver", "Thunder Grey", "Denim Blue",
    "Fusion Red", "Pine Grey", "Birch Light", "Savile Grey", "Pebble Grey",
)  # fmt: skip
# ISO 3779 / 49 CFR 565: letter values and position weights of the check digit (pos. 9)
VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # model year 2010 = A ... 2039 = 9, cycle 30
PLATE_LETTERS = "ABCDEFGHJKLMNOPRSTUWXYZ"  # Swedish plates: no I, Q, V, Å, Ä, Ö
PLATE_LAST = "0123456789" + PLATE_LETTERS.replace("O", "")  # the last sign: no O
VIN_LETTERS = VIN_CHARS[:23]
VIN_PLANTS = "0123AFG"
PART_WORDS = (
    "filter", "gasket", "seal", "sensor", "bolt kit", "clip set", "bearing", "hose",
    "bracket", "pad set", "disc", "belt", "fluid", "bulb", "relay", "valve",
)  # fmt: skip
VERBS = ("Replace", "Inspect", "Adjust", "Check and top up", "Clean", "Repair", "Test")
NOTES = (
    "Customer reports {sym} {when}.",
    "Vehicle arrived {state}; {sym} confirmed on test drive.",
    "Loan car {loan}. Customer wants a call before extra work above SEK {limit}.",
    "Parts ordered from central stock, expected {when2}.",
    "Follow-up booked: {sym} to be checked again at next service.",
    "Technician note: {sym}; torque values per workshop manual.",
    "Warranty case opened with the importer; photos attached to the order.",
)
SYMPTOMS = (
    "a rattling noise from the front axle", "vibration at highway speed",
    "a warning light on the dashboard", "squeaking brakes when cold",
    "the air conditioning blowing warm air", "slow cranking in the morning",
    "a pull to the right when braking", "an oil stain under the car",
    "a whistling sound from the turbo", "the infotainment screen rebooting",
)  # fmt: skip


def vin_check_digit(vin17: str) -> str:
    """The ISO 3779 (North American) check digit that belongs at position 9."""
    total = sum(VIN_VALUES[c] * w for c, w in zip(vin17, VIN_WEIGHTS, strict=True))
    r = total % 11
    return "X" if r == 10 else str(r)


def year_code(year: int) -> str:
    return YEAR_CODES[(year - 2010) % 30]


def make_vin(rng: random.Random, year: int) -> str:
    """``YV1`` (Volvo Cars) + attributes + check digit + model year + plant + serial."""
    body = (
        "YV1"
        + "".join(rng.choices(VIN_LETTERS, k=5))
        + "0"
        + year_code(year)
        + VIN_PLANTS[int(rng.random() * len(VIN_PLANTS))]
        + f"{int(rng.random() * 1_000_000):06d}"
    )
    return body[:8] + vin_check_digit(body) + body[9:]


def make_plate(rng: random.Random) -> str:
    """A Swedish plate: three letters, two digits, a digit or a letter (``ABC 12D``)."""
    letters = "".join(rng.choices(PLATE_LETTERS, k=3))
    last = PLATE_LAST[int(rng.random() * len(PLATE_LAST))]
    return f"{letters} {int(rng.random() * 100):02d}{last}"


def money(cents: int) -> Decimal128:
    """``cents / 100`` as Decimal128, exponent -2 (two decimals), built from its bits."""
    return Decimal128.from_bid(struct.pack("<QQ", cents, 6174 << 49))


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _service(
    r: Callable[[], float], items: list[Any], by_type: dict[str, list[int]]
) -> tuple[str, list[Any], int, int]:
    """An order's service type, its items (one of the type, up to 8 more), labor and
    parts: drawn from ``r`` in this order, which a seed's documents depend on."""
    stype = SERVICE_TYPES[int(r() * len(SERVICE_TYPES))]
    ops = by_type[stype]
    chosen = [ops[int(r() * len(ops))]]
    for _ in range(int(r() ** 12 * 8)):  # 1-8 items, 1.4 on average
        chosen.append(int(r() * len(items)))
    labor = parts = 0
    lines = []
    for op in chosen:
        raw, lab, par = items[op][int(r() ** 3 * 4)]
        lines.append(raw)
        labor += lab
        parts += par
    return stype, lines, labor, parts


def _vehicle(v: tuple[Any, ...], mileage: int) -> dict[str, Any]:
    vin, plate, make, model, year, engine, color = v[:7]
    return {
        "vin": vin,
        "license_plate": plate,
        "make": make,
        "model": model,
        "year": year,
        "engine_type": engine,
        "color": color,
        "mileage": mileage,
    }


def _dates(
    doc: dict[str, Any], r: Callable[[], float], order_ms: int, service_ms: int, closed: bool
) -> None:
    """Completion (a closed order), creation and last update, drawn from ``r``."""
    if closed:
        done_ms = service_ms + int((0.05 + r() * r() * 3) * DAY_MS)
        doc["completion_date"] = DatetimeMS(done_ms)
        updated_ms = done_ms + int(r() * 2 * DAY_MS)
    else:
        updated_ms = order_ms + int(r() * (service_ms - order_ms + 1))
    doc["created_at"] = DatetimeMS(order_ms)
    doc["updated_at"] = DatetimeMS(updated_ms)


def _operation(
    rng: random.Random, t: int, n: int, stype: str
) -> list[tuple[RawBSONDocument, int, int]]:
    """Operation ``n`` of service type ``t``, priced, encoded for quantities 1-4:
    (raw item, labor cents, parts cents) each."""
    hours_tenths = rng.randint(2, 40)
    # (part number, name, quantity per item, unit price in cents)
    parts = [
        (
            f"{31_000_000 + t * 10_000 + n * 100 + p}",
            rng.choice(PART_WORDS),
            rng.choice((1, 1, 1, 2, 4)),
            int(rng.random() ** 2 * 2_500 + 49) * 100 + rng.choice((0, 0, 50)),
        )
        for p in range(rng.choice((0, 0, 0, 1, 1, 2)))
    ]
    parts_cents = sum(p[2] * p[3] for p in parts)
    labor_cents = hours_tenths * LABOR_RATE_CENTS // 10
    unit = labor_cents + parts_cents
    words = stype.replace("_", " ")
    desc = f"{words.capitalize()}: {rng.choice(VERBS).lower()} {rng.choice(PART_WORDS)}"
    per_qty = []
    for q in range(1, 5):
        doc = {
            "item_id": f"OP-{t:02d}{n:02d}",
            "service_type": stype,
            "description": desc,
            "quantity": q,
            "unit_price": money(unit),
            "total_price": money(unit * q),
            "labor_hours": hours_tenths * q / 10,
            "parts_used": [
                {
                    "part_number": number,
                    "name": part_name,
                    "quantity": per_item * q,
                    "unit_price": money(price),
                }
                for number, part_name, per_item, price in parts
            ],
        }
        raw = RawBSONDocument(bson.encode(doc))
        per_qty.append((raw, labor_cents * q, parts_cents * q))
    return per_qty


def _customer(
    rng: random.Random,
    customer_id: str,
    names: tuple[list[str], list[str], list[str], list[tuple[str, str]], list[str]],
) -> dict[str, Any]:
    """One customer of the pool, drawn from ``rng`` (a private person or a company)."""
    first, last, streets, cities, companies = names
    ctype = rng.choice(CUSTOMER_TYPES)
    fn, ln = rng.choice(first), rng.choice(last)
    if ctype == "private":
        name = f"{fn} {ln}"
        email = f"{_ascii(fn)}.{_ascii(ln)}{rng.randint(1, 99)}@" + rng.choice(
            ("gmail.com", "hotmail.se", "outlook.com", "telia.com", "icloud.com")
        )
    else:
        name = rng.choice(companies)
        email = f"verkstad@{_ascii(name).split()[0].strip(',.')}.se"
    city, postcode = rng.choice(cities)
    mobile = rng.choice(("70", "72", "73", "76", "79"))
    phone = 1_000_000 + int(rng.random() * 9_000_000)
    return {
        "customer_id": customer_id,
        "name": name,
        "email": email,
        "phone": f"+46 {mobile} {phone // 10_000} {phone // 100 % 100:02d} "
        f"{phone % 100:02d}",
        "customer_type": ctype,
        "address": {
            "street": f"{rng.choice(streets)} {rng.randint(1, 120)}",
            "postal_code": f"{postcode[:3]} {postcode[3:]}",
            "city": city,
            "country": "SE",
        },
    }


def _new_vehicle(rng: random.Random) -> tuple[Any, ...]:
    """One vehicle of the pool: (vin, plate, make, model, year, engine, color, km per
    year, in traffic since (ms), extended warranty), drawn from ``rng``."""
    model, since, engines = rng.choice(MODELS)
    year = rng.randint(since, 2019)
    return (
        make_vin(rng, year),
        make_plate(rng),
        "Volvo",
        model,
        year,
        rng.choice(engines),
        rng.choice(COLORS),
        rng.randint(8_000, 32_000),  # km per year
        (year - 1970) * YEAR_MS - YEAR_MS // 3,  # in traffic from ~ Sept before
        rng.random() < 0.2,  # bought an extended warranty
    )


class ServiceOrders(BlockSource):
    """The built-in document source."""

    name = NAME

    def __init__(self, seed: int, pool_size: int = 10_000) -> None:
        super().__init__(seed)
        rng = random.Random(f"vida-pools:{seed}")
        from faker import Faker  # imported here: only generating processes pay for it

        fake = Faker("sv_SE")
        fake.seed_instance(seed)
        first = [fake.first_name() for _ in range(300)]
        last = [fake.last_name() for _ in range(300)]
        streets = [fake.street_name() for _ in range(400)]
        cities = [(fake.city(), fake.postcode()) for _ in range(150)]
        companies = [fake.company() for _ in range(200)]
        self._catalog = self._build_catalog(random.Random(f"vida-catalog:{seed}"))
        self._customers: list[RawBSONDocument] = []
        self._vehicles: list[tuple[Any, ...]] = []
        names = (first, last, streets, cities, companies)
        for k in range(pool_size):
            customer = _customer(rng, f"CUST-{seed % 1000:03d}-{k:07d}", names)
            self._customers.append(RawBSONDocument(bson.encode(customer)))
            self._vehicles.append(_new_vehicle(rng))
        self._centers = [f"SC-{c:04d}" for c in range(1, 121)]
        self._notes = [self._note(rng) for _ in range(500)]
        self._money: dict[int, Decimal128] = {}

    @staticmethod
    def _note(rng: random.Random) -> str:
        parts = rng.sample(NOTES, rng.choice((0, 0, 1, 1, 1, 2)))
        words = {
            "sym": rng.choice(SYMPTOMS),
            "when": rng.choice(("since last week", "after the winter", "on long trips")),
            "when2": rng.choice(("tomorrow", "within two days", "next Monday")),
            "state": rng.choice(("on time", "late", "on a tow truck", "after hours")),
            "loan": rng.choice(("booked", "declined", "not available")),
            "limit": rng.choice(("1,500", "3,000", "5,000")),
        }
        return " ".join(p.format(**words) for p in parts)

    @staticmethod
    def _build_catalog(
        rng: random.Random,
    ) -> tuple[list[list[tuple[RawBSONDocument, int, int]]], dict[str, list[int]]]:
        """Every operation priced once and encoded once per quantity 1-4.

        Returns ``items[op][quantity - 1] = (raw item, labor cents, parts cents)`` and the
        operations of each service type.
        """
        items: list[list[tuple[RawBSONDocument, int, int]]] = []
        by_type: dict[str, list[int]] = {}
        for t, stype in enumerate(SERVICE_TYPES):
            for n in range(8):
                per_qty = _operation(rng, t, n, stype)
                by_type.setdefault(stype, []).append(len(items))
                items.append(per_qty)
        return items, by_type

    def _dec(self, cents: int) -> Decimal128:
        cache = self._money
        value = cache.get(cents)
        if value is None:
            if len(cache) > 100_000:
                cache.clear()
            value = cache[cents] = money(cents)
        return value

    def _one(self, rng: random.Random, i: int) -> bytes:
        r = rng.random
        (items, by_type) = self._catalog
        k = int(r() * len(self._customers))
        vehicle = self._vehicles[k]
        km_year, since_ms, extended = vehicle[7:]
        order_ms = index_ms(i) + int(r() * STEP_MS)
        service_ms = order_ms + int(r() * r() * 21 * DAY_MS)
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        closed = status in CLOSED_STATUSES
        age = (service_ms - since_ms) / YEAR_MS
        mileage = int(max(age, 0.05) * km_year * (0.9 + 0.2 * r()))

        stype, lines, labor, parts = _service(r, items, by_type)
        net = labor + parts
        tax = (net * VAT_PERCENT + 50) // 100
        center = int(r() * len(self._centers))
        expiry_ms = since_ms + (7 if extended else 3) * YEAR_MS
        covered = service_ms < expiry_ms
        doc: dict[str, Any] = {
            "_id": growing_id(self.tag, i, order_ms),
            "order_id": f"WO-{self._centers[center][3:]}-{i:010d}",
            "service_type": stype,
            "service_center_id": self._centers[center],
            "status": status,
            "customer": self._customers[k],
            "vehicle": _vehicle(vehicle, mileage),
            "service_items": lines,
            "order_date": DatetimeMS(order_ms),
            "service_date": DatetimeMS(service_ms),
        }
        _dates(doc, r, order_ms, service_ms, closed)
        dec = self._dec
        doc["labor_cost"] = dec(labor)
        doc["parts_cost"] = dec(parts)
        doc["tax_amount"] = dec(tax)
        doc["total_amount"] = dec(net + tax)
        doc["technician_id"] = f"TECH-{center + 1:04d}-{int(r() * 14) + 1:02d}"
        doc["warranty_info"] = {
            "covered": covered,
            "warranty_type": ("extended" if extended else "factory") if covered else "none",
            "expiry_date": DatetimeMS(expiry_ms),
        }
        doc["notes"] = self._notes[int(r() * len(self._notes))]
        return bson.encode(doc)
