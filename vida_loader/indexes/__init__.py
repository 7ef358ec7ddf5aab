"""Indexes: their definitions and the Cosmos DB translation (what the target gets of each
source index), the build task, and the index phase of a run or a restore."""
