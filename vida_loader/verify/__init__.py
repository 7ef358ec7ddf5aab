"""Prove a job's copy: ``counts`` (each range counted on both sides, cheap), ``deep``
(each range read on both sides and compared byte for byte, ``compare``), ``repair``
(fix from the source what a deep verify found)."""
