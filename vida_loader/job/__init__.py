"""A planned job and what is kept of it in ``partitions/<job>/``: the manifest (the plan),
the run state of every task kind, the lock, the handler that records task attempts, the
job opened with its endpoints, and what ``status`` reads. The files' paths and their
atomic writes are declared one floor down, in ``jobfiles``."""
