"""ConnectionPool: reuse authenticated connections across tests."""
