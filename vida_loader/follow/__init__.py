"""Keep the target in step with a source that is still written: the change-stream
position taken before the copy (``position``), the source's changes turned into
idempotent writes (``apply``), and ``run --follow``'s loop (``loop``)."""
