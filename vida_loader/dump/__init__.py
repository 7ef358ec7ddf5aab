"""mongodump-layout files: ``dump`` writes them from a planned job's source, partitions in
parallel and resumable; ``restore`` reads them (and mongodump's own) back."""
