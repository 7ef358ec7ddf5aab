"""JSON templates: a document whose strings may hold ``{{placeholders}}``, compiled once.

The language is described in ``docs/templates.md``. Compiling turns the template into a
tree of small functions (``Node``); generating a document calls the root with the
document's RNG and index, then encodes the result with ``bson.encode``. Faker values
come from pools filled once per process, never from a faker call per document.

Every error names the file, the line and the placeholder, and is raised before anything
is written.
"""

from __future__ import annotations

import datetime
import json
import random
import re
import shlex
import struct
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import bson
import orjson
from bson import Decimal128, ObjectId
from bson.datetime_ms import DatetimeMS

from vida_loader.errors import TemplateError, UsageError
from vida_loader.generate import BlockSource, growing_id, index_ms
from vida_loader.generate.service_orders import make_plate, make_vin

FAKER_POOL = 1000  # values drawn per faker method, once per process
MISSING = object()  # a field left out by "| if"
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
DAY_MS = 86_400_000

# A node computes one value: node(ctx) where ctx holds the RNG, the index and the objects
# being built (innermost last) for field references.
Node = Callable[["Context"], Any]


class Context:
    __slots__ = ("rng", "i", "stack", "tag")

    def __init__(self, rng: random.Random, i: int, tag: bytes) -> None:
        self.rng = rng
        self.i = i
        self.stack: list[dict[str, Any]] = []
        self.tag = tag


class Template(BlockSource):
    """A compiled JSON template; a document source like the built-ins."""

    def __init__(self, path: Path, seed: int) -> None:
        super().__init__(seed)
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--source '{path}': no such template file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--source '{path}' cannot be read: {exc}") from None
        try:
            tree = json.loads(text)  # not orjson: it reports no line, and this runs once
        except json.JSONDecodeError as exc:
            raise TemplateError(
                f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        if not isinstance(tree, dict):  # noqa: SIM102
            raise TemplateError(f"{path}:1: a template is a JSON object (one document)")
        self._text = text
        self._cursor = 0
        self._faker: Any = None
        self._pools: dict[str, list[Any]] = {}
        settings = {k: tree.pop(k) for k in [k for k in tree if k.startswith("$")]}
        self.description = str(settings.pop("$description", ""))
        self.locale = str(settings.pop("$locale", "en_US"))
        if settings:
            key = next(iter(settings))
            line = self._line_of(orjson.dumps(key).decode())
            raise TemplateError(
                f"{path}:{line}: unknown setting '{key}' (settings: $description, $locale)"
            )
        self._root = self._object(tree, top=True)
        del self._text

    # --- generating ----------------------------------------------------------------

    def _one(self, rng: random.Random, i: int) -> bytes:
        return bson.encode(self._root(Context(rng, i, self.tag)))

    def document(self, i: int) -> dict[str, Any]:
        """Document ``i`` decoded (tests, examples)."""
        return bson.decode(self.encode_range(i, i + 1)[0])

    # --- compiling -----------------------------------------------------------------

    def _line_of(self, needle: str) -> int:
        """The line of the next occurrence of ``needle`` (templates are compiled in
        file order, so the cursor moves forward)."""
        pos = self._text.find(needle, self._cursor)
        if pos < 0:
            pos = self._text.find(needle)
        if pos < 0:
            return 1
        self._cursor = pos + 1
        return self._text.count("\n", 0, pos) + 1

    def _where(self, placeholder: str) -> str:
        """``file:line: placeholder``; call once per placeholder, in file order."""
        return f"{self.path}:{self._line_of(placeholder)}: {placeholder}"

    def _object(self, tree: dict[str, Any], top: bool = False) -> Node:
        fields: list[tuple[str, Node]] = []
        for key, value in tree.items():
            self._line_of(orjson.dumps(key).decode())
            fields.append((key, self._value(value)))
        if top:
            ids = [f for f in fields if f[0] == "_id"]
            others = [f for f in fields if f[0] != "_id"]
            fields = (ids or [("_id", _default_id)]) + others  # _id first, always

        def build(ctx: Context) -> dict[str, Any]:
            doc: dict[str, Any] = {}
            ctx.stack.append(doc)
            try:
                for key, node in fields:
                    value = node(ctx)
                    if value is not MISSING:
                        doc[key] = value
            finally:
                ctx.stack.pop()
            return doc

        return build

    def _value(self, value: Any) -> Node:
        if isinstance(value, dict):
            return self._object(value)
        if isinstance(value, list):
            return self._list(value)
        if isinstance(value, str) and "{{" in value:
            return self._string(value)
        return _constant(value)

    def _list(self, items: list[Any]) -> Node:
        if items and isinstance(items[0], str) and items[0].strip().startswith("{{array"):
            text = items[0].strip()
            where = self._where(text)

            def fail(message: str) -> TemplateError:
                return TemplateError(f"{where}: {message}")

            if len(items) != 2 or not text.endswith("}}"):
                raise fail('write ["{{array MIN MAX}}", ITEM]: the placeholder, then one item')
            args = _split(text[2:-2], fail)
            lo, hi = _ints(args[1:], 2, fail)
            if not 0 <= lo <= hi:
                raise fail("array needs 0 <= MIN <= MAX")
            item = self._value(items[1])

            def array(ctx: Context) -> list[Any]:
                n = lo + int(ctx.rng.random() * (hi - lo + 1))
                return [item(ctx) for _ in range(n)]

            return array
        nodes = [self._value(v) for v in items]
        return lambda ctx: [n(ctx) for n in nodes]

    def _string(self, value: str) -> Node:
        matches = list(PLACEHOLDER.finditer(value))
        if not matches:
            raise TemplateError(f"{self._where(value)}: '{{{{' without a closing '}}}}'")
        if len(matches) == 1 and matches[0].span() == (0, len(value)):
            return self._placeholder(value, matches[0])  # typed value
        parts: list[Node] = []
        last = 0
        for m in matches:
            if m.start() > last:
                parts.append(_constant(value[last : m.start()]))
            node = self._placeholder(m.group(0), m)
            parts.append(node)
            last = m.end()
        if last < len(value):
            parts.append(_constant(value[last:]))
        return lambda ctx: "".join(_text(p(ctx)) for p in parts)

    def _placeholder(self, text: str, match: re.Match[str]) -> Node:
        where = self._where(text)

        def fail(message: str) -> TemplateError:
            return TemplateError(f"{where}: {message}")

        body, bar, cond = match.group(1).partition("|")
        args = _split(body, fail)
        if not args:
            raise fail("empty placeholder")
        node = self._compile(where, fail, args[0], args[1:])
        if not bar:
            return node
        return self._condition(where, fail, node, _split(cond, fail))

    def _condition(self, where: str, fail: Fail, node: Node, words: list[str]) -> Node:
        if len(words) < 3 or words[0] not in ("if", "unless"):
            raise fail("a condition reads '| if FIELD VALUE...' or '| unless FIELD VALUE...'")
        want = words[0] == "if"
        ref = self._ref(where, fail, words[1])
        values = set(words[2:])

        def conditional(ctx: Context) -> Any:
            return node(ctx) if (_text(ref(ctx)) in values) == want else MISSING

        return conditional

    def _ref(self, where: str, fail: Fail, path: str) -> Node:
        """A field of the document: looked up in the object being built, then outwards.

        A path through an array gives the list of values (for ``sum``).
        """
        parts = path.split(".")
        if not all(parts):
            raise fail(f"'{path}' is not a field path")

        def lookup(ctx: Context) -> Any:
            for obj in reversed(ctx.stack):
                found = _walk(obj, parts)
                if found is not MISSING:
                    return found
            raise KeyError(path)

        def ref(ctx: Context) -> Any:
            try:
                return lookup(ctx)
            except KeyError:
                raise TemplateError(
                    f"{where}: field '{path}' is not set before it is used "
                    "(fields are filled in file order)"
                ) from None

        return ref

    def _compile(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        if name.startswith("faker."):
            return self._faker_node(fail, name[6:], args)
        build = PLACEHOLDERS.get(name)
        if build is None:
            raise fail(f"unknown placeholder '{name}' (see docs/templates.md)")
        return build(self, where, fail, name, args)

    # --- one builder per placeholder: (where, fail, name, args) -> Node ---------------

    def _p_seq(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 0, 1, fail)
        if args:
            width = _ints(args, 1, fail)[0]
            return lambda ctx: f"{ctx.i:0{width}d}"
        return lambda ctx: ctx.i

    def _p_int(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        lo, hi = _ints(args, 2, fail)
        if lo > hi:
            raise fail("int needs MIN <= MAX")
        return lambda ctx: lo + int(ctx.rng.random() * (hi - lo + 1))

    def _p_float(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 2, 3, fail)
        flo, fhi = _floats(args[:2], fail)
        places = _ints(args[2:], 1, fail)[0] if len(args) == 3 else None

        def float_node(ctx: Context) -> float:
            v = flo + ctx.rng.random() * (fhi - flo)
            return round(v, places) if places is not None else v

        return float_node

    def _p_decimal(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 3, 3, fail)
        dlo, dhi = _decimals(args[:2], fail)
        places = _ints(args[2:], 1, fail)[0]
        scale = 10**places
        clo, chi = int(dlo * scale), int(dhi * scale)
        return lambda ctx: _decimal128(clo + int(ctx.rng.random() * (chi - clo + 1)), places)

    def _p_bool(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 0, 1, fail)
        p = _floats(args, fail)[0] if args else 0.5
        return lambda ctx: ctx.rng.random() < p

    def _p_choice(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        if not args:
            raise fail("choice needs at least one value")
        options = [_scalar(a) for a in args]
        return lambda ctx: options[int(ctx.rng.random() * len(options))]

    def _p_date(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 2, 2, fail)
        lo_ms, hi_ms = (_date_ms(a, fail) for a in args)
        if lo_ms > hi_ms:
            raise fail("date needs FROM <= TO")
        return lambda ctx: DatetimeMS(lo_ms + int(ctx.rng.random() * (hi_ms - lo_ms)))

    def _p_date_after(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 3, 3, fail)
        base = self._ref(where, fail, args[0])
        dmin, dmax = _floats(args[1:], fail)

        def after(ctx: Context) -> DatetimeMS:
            start = _as_ms(base(ctx), where)
            return DatetimeMS(start + int((dmin + ctx.rng.random() * (dmax - dmin)) * DAY_MS))

        return after

    def _p_objectid(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 0, 0, fail)
        return _objectid

    def _p_ref(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 1, 1, fail)
        return self._ref(where, fail, args[0])

    def _p_arith(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        if len(args) < 2:
            raise fail(f"{name} needs two or more fields or numbers")
        terms = [self._operand(where, fail, a) for a in args]
        return lambda ctx: _arith(name, [t(ctx) for t in terms], where)

    def _p_sum(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 1, 1, fail)
        ref = self._ref(where, fail, args[0])
        return lambda ctx: _arith("add", _flat(ref(ctx)), where, empty_ok=True)

    def _p_pct(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        if len(args) < 2:
            raise fail("pct takes RATE then one or more fields: pct 25 labor_cost parts_cost")
        rate = _decimals(args[:1], fail)[0]
        terms = [self._operand(where, fail, a) for a in args[1:]]
        return lambda ctx: _percent(_arith("add", [t(ctx) for t in terms], where), rate)

    def _p_mileage(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 2, 2, fail)
        model_year = self._operand(where, fail, args[0])
        on = self._ref(where, fail, args[1])

        def mileage(ctx: Context) -> int:
            since = datetime.datetime(int(model_year(ctx)) - 1, 9, 1, tzinfo=datetime.UTC)
            years = (_as_ms(on(ctx), where) / 1000 - since.timestamp()) / 31_556_952
            return int(max(years, 0.05) * (8_000 + ctx.rng.random() * 24_000))

        return mileage

    def _p_vin(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 1, 1, fail)
        year = self._operand(where, fail, args[0])
        return lambda ctx: make_vin(ctx.rng, int(year(ctx)))

    def _p_plate_se(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 0, 0, fail)
        return lambda ctx: make_plate(ctx.rng)

    def _p_phone_se(self, where: str, fail: Fail, name: str, args: list[str]) -> Node:
        _count(args, 0, 0, fail)

        def phone(ctx: Context) -> str:
            r = ctx.rng.random
            return (
                f"+46 7{int(r() * 10)} {100 + int(r() * 900)} {10 + int(r() * 90)} "
                f"{10 + int(r() * 90)}"
            )

        return phone

    def _operand(self, where: str, fail: Fail, arg: str) -> Node:
        try:
            number = _number(arg)
        except ValueError:
            return self._ref(where, fail, arg)
        return lambda _ctx: number

    def _faker_node(self, fail: Fail, method: str, args: list[str]) -> Node:
        if args:
            raise fail("faker placeholders take no arguments")
        pool = self._pools.get(method)
        if pool is None:
            if self._faker is None:
                from faker import Faker

                try:
                    self._faker = Faker(self.locale)
                except AttributeError:
                    raise fail(f"faker has no locale '{self.locale}' ($locale)") from None
                self._faker.seed_instance(self.seed)
            fn = getattr(self._faker, method, None)
            if not callable(fn) or method.startswith("_"):
                raise fail(f"faker has no provider '{method}'")
            try:
                pool = [_bsonable(fn()) for _ in range(FAKER_POOL)]
            except Exception as exc:
                raise fail(f"faker.{method}() failed: {exc}") from None
            self._pools[method] = pool
        values = pool
        return lambda ctx: values[int(ctx.rng.random() * len(values))]


# --- values ---------------------------------------------------------------------------


def _constant(value: Any) -> Node:
    return lambda _ctx: value


def _default_id(ctx: Context) -> ObjectId:
    return growing_id(ctx.tag, ctx.i)


def _objectid(ctx: Context) -> ObjectId:
    secs = index_ms(ctx.i) // 1000
    rest = ctx.rng.getrandbits(64).to_bytes(8, "big")
    return ObjectId(struct.pack(">I", secs) + rest)


def _walk(obj: Any, parts: list[str]) -> Any:
    cur = obj
    for k, part in enumerate(parts):
        if isinstance(cur, list):
            return [_walk(item, parts[k:]) for item in cur]
        if not isinstance(cur, dict) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def _flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [v for item in value for v in _flat(item) if v is not MISSING]
    return [value]


def _text(value: Any) -> str:
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, DatetimeMS):
        return value.as_datetime().isoformat()
    return str(value)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return Decimal(str(value))


def _arith(op: str, values: list[Any], where: str, empty_ok: bool = False) -> Any:
    if not values:
        if empty_ok:
            return 0
        raise TemplateError(f"{where}: nothing to add")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | Decimal128):
            raise TemplateError(f"{where}: {_text(v)!r} is not a number")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        acc_i = 0 if op == "add" else 1
        for v in values:
            acc_i = acc_i + v if op == "add" else acc_i * v
        return acc_i
    if any(isinstance(v, Decimal128) for v in values):
        acc = Decimal(0) if op == "add" else Decimal(1)
        for v in values:
            d = _to_decimal(v)
            acc = acc + d if op == "add" else acc * d
        return Decimal128(acc)
    acc_f = 0.0 if op == "add" else 1.0
    for v in values:
        acc_f = acc_f + float(v) if op == "add" else acc_f * float(v)
    return acc_f


def _percent(value: Any, rate: Decimal) -> Any:
    if isinstance(value, Decimal128):
        d = value.to_decimal()
        exp = d.as_tuple().exponent
        quantum = Decimal(1).scaleb(exp if isinstance(exp, int) else 0)
        return Decimal128((d * rate / 100).quantize(quantum, ROUND_HALF_UP))
    if isinstance(value, int):
        return int((Decimal(value) * rate / 100).quantize(Decimal(1), ROUND_HALF_UP))
    return float(value) * float(rate) / 100


def _decimal128(units: int, places: int) -> Decimal128:
    return Decimal128(Decimal(units).scaleb(-places))


def _as_ms(value: Any, where: str) -> int:
    if isinstance(value, DatetimeMS):
        return int(value)
    if isinstance(value, datetime.datetime):
        return int(value.replace(tzinfo=value.tzinfo or datetime.UTC).timestamp() * 1000)
    raise TemplateError(f"{where}: {_text(value)!r} is not a date")


def _bsonable(value: Any) -> Any:
    """Faker values BSON can hold: dates become datetimes, the rest strings if need be."""
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
    if isinstance(value, Decimal):
        return Decimal128(value)
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


# --- arguments ------------------------------------------------------------------------

Fail = Callable[[str], Exception]


def _split(body: str, fail: Fail) -> list[str]:
    try:
        return shlex.split(body)
    except ValueError as exc:
        raise fail(f"cannot split the arguments ({exc})") from None


def _count(args: list[str], lo: int, hi: int, fail: Fail) -> None:
    if not lo <= len(args) <= hi:
        want = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise fail(f"takes {want} arguments, got {len(args)}")


def _ints(args: list[str], n: int, fail: Fail) -> list[int]:
    _count(args, n, n, fail)
    try:
        return [int(a) for a in args]
    except ValueError:
        raise fail(f"needs {n} whole numbers, got {' '.join(args)!r}") from None


def _floats(args: list[str], fail: Fail) -> list[float]:
    try:
        return [float(a) for a in args]
    except ValueError:
        raise fail(f"needs numbers, got {' '.join(args)!r}") from None


def _decimals(args: list[str], fail: Fail) -> list[Decimal]:
    try:
        return [Decimal(a) for a in args]
    except InvalidOperation:
        raise fail(f"needs numbers, got {' '.join(args)!r}") from None


def _number(arg: str) -> int | float:
    try:
        return int(arg)
    except ValueError:
        return float(arg)


def _scalar(arg: str) -> Any:
    try:
        return _number(arg)
    except ValueError:
        return arg


def _date_ms(arg: str, fail: Fail) -> int:
    try:
        d = datetime.datetime.fromisoformat(arg)
    except ValueError:
        raise fail(f"'{arg}' is not a date (YYYY-MM-DD or ISO 8601)") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.UTC)
    return int(d.timestamp() * 1000)


PLACEHOLDERS: dict[str, Callable[[Template, str, Fail, str, list[str]], Node]] = {
    "seq": Template._p_seq,
    "int": Template._p_int,
    "float": Template._p_float,
    "decimal": Template._p_decimal,
    "bool": Template._p_bool,
    "choice": Template._p_choice,
    "date": Template._p_date,
    "date_after": Template._p_date_after,
    "objectid": Template._p_objectid,
    "ref": Template._p_ref,
    "add": Template._p_arith,
    "mul": Template._p_arith,
    "sum": Template._p_sum,
    "pct": Template._p_pct,
    "mileage": Template._p_mileage,
    "vin": Template._p_vin,
    "plate_se": Template._p_plate_se,
    "phone_se": Template._p_phone_se,
}
