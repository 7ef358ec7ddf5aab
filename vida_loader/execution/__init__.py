"""Running tasks: where they run (``pool``), in what order and what happens when they
fail or their process dies (``scheduler``), and what they report on the way (``events``).

Nothing here knows MongoDB: a task is any picklable function that takes its arguments
plus a ``Reporter`` and returns a result without raising.
"""
