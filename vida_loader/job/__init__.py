"""A job's folder ``partitions/<job>/`` and everything kept in it: the declared files and
their atomic writes, the manifest (the plan), the run state of every task kind, the lock,
the handler that records task attempts, rejected documents, and what ``status`` reads."""
