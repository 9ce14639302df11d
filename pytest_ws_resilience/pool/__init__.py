"""ConnectionPool: reuse authenticated connections across tests; the reuse key and the
stats are pure data (keys, stats)."""
