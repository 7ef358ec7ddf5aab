"""Copy only some kinds of service orders (vida-loader run --transform).

    vida-loader run --transform examples/transforms/service_types.py

A filter alone: the source answers each partition's range query with only these orders,
so the others are never read (nor billed in request units on Cosmos DB), and the copy
stays on raw BSON: no document is decoded. ``verify`` counts the source through the
same filter. The interface is in docs/transforms.md.
"""

from __future__ import annotations


class KeepServiceTypes:
    filter = {
        "service_type": {
            "$in": ["annual_service", "brake_service", "recall_campaign", "warranty_repair"]
        }
    }
