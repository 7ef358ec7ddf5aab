"""Transforms: the plugin a user writes to filter, reshape, drop or reject documents on
their way to the target (``plugin``: load, check, apply, outcomes), and the job's file of
rejected documents (``rejects``)."""
