"""Several shiftd instances on one PostgreSQL database: partitions, leases, fencing.

A shift belongs to one of a fixed number of partitions (`partitions.partition_of`); each
partition is leased by one instance at a time, and only the lease holder runs the actors of
its shifts (`ownership.Ownership`). With SQLite there is one instance and it owns everything
(`ownership.SoleOwner`).
"""
