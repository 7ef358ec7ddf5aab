"""Copying a collection: the planner that splits it into ranges, the preflight of
``config check``, the coordinator that runs a job's tasks and alone writes its state, and
the copy task that moves one range and proves it arrived."""
