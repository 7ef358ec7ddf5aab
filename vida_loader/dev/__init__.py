"""Dev tooling for tests, ``make demo`` and benchmarks: local servers and stand-ins.

Not the library proper: nothing outside ``dev`` imports it.
"""
