"""Request units: the meter that reads what a Cosmos DB source charges for each command,
and the budget, shared by every worker of a run, that paces reads to a rate."""
