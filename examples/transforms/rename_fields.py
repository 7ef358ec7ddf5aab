"""Reshape service orders on their way to the target (vida-loader run --transform).

    vida-loader run --transform examples/transforms/rename_fields.py

- drops test orders (order_id starting with "TEST-"): they never reach the target;
- renames service_center_id to workshop_id and technician_id to technician;
- leaves out the free-text notes (internal remarks that must not leave the old system);
- adds migrated_at, the time the worker process started (one value per process), which
  `verify --deep` leaves out of its comparison (verify_ignore);
- rejects orders whose total is negative or whose VIN is not 17 characters: they go to
  partitions/<job>/rejects.bson with the reason in rejects.jsonl, and the copy goes on.

The interface is in docs/transforms.md.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

RENAMED = {"service_center_id": "workshop_id", "technician_id": "technician"}


class RenameFields:
    # Set anew on every run: `verify --deep` leaves it out when comparing.
    verify_ignore = ("migrated_at",)

    def __init__(self) -> None:
        self.migrated_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)

    def transform(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        if str(doc.get("order_id", "")).startswith("TEST-"):
            return None  # dropped: counted, not kept
        for old, new in RENAMED.items():
            if old in doc:
                doc[new] = doc.pop(old)
        doc.pop("notes", None)
        doc["migrated_at"] = self.migrated_at
        return doc

    def validate(self, doc: dict[str, Any]) -> str | None:
        total = doc.get("total_amount")
        if total is not None and total.to_decimal() < Decimal(0):
            return f"total_amount {total} is negative"
        vin = doc.get("vehicle", {}).get("vin", "")
        if len(vin) != 17:
            return f"vehicle.vin {vin!r} is not 17 characters"
        return None
