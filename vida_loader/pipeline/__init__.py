"""The pieces every task that moves documents is built from: clients (one connection per
worker and server), the reader (a resuming cursor of raw documents), the writer (chunked,
retried inserts on a thread of their own, with the one rule for the last chunk of
unacknowledged writes), confirmation and repair (what the target lacks is sent again,
acknowledged), target preparation (empty, drop, append) and the never-raise boundary
of a task (``task``).

``copy.task.copy_partition`` and ``generate.runner.generate_slice`` are assembled from
these; the next task kinds (dump, restore, follow) are meant to be too.
"""
