"""min/max probing against servers that refuse or ignore it.

SecantusDB honours min/max, so it cannot show the two Cosmos DB behaviours the probe
guards against; a stand-in collection does. The honouring case runs against the real
server in tests/integration/test_plan_server.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import OperationFailure

from vida_loader.copy.planner import probe_minmax

IDS = [1, 2, 3]


class FakeCursor:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.lo: Any = None
        self.hi: Any = None

    def min(self, spec: list[tuple[str, Any]]) -> FakeCursor:
        self.lo = spec[0][1]
        return self

    def max(self, spec: list[tuple[str, Any]]) -> FakeCursor:
        self.hi = spec[0][1]
        return self

    def hint(self, _spec: Any) -> FakeCursor:
        if self.behaviour == "refuse":
            raise OperationFailure("min/max not supported", code=115)
        return self

    def limit(self, n: int) -> list[dict[str, Any]]:
        ids = IDS
        if self.behaviour == "honour":
            ids = [i for i in IDS if (self.lo is None or i >= self.lo)]
            ids = [i for i in ids if (self.hi is None or i < self.hi)]
        return [{"_id": i} for i in ids[:n]]


class FakeCollection:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour

    def find(self, *_args: Any, **_kw: Any) -> FakeCursor:
        return FakeCursor(self.behaviour)


@pytest.mark.parametrize(
    "behaviour, expected", [("honour", True), ("ignore", False), ("refuse", False)]
)
def test_probe_detects_refused_and_ignored_min_max(behaviour: str, expected: bool) -> None:
    assert probe_minmax(FakeCollection(behaviour), 1) is expected  # type: ignore[arg-type]
