"""Event contracts: which events a run must emit, in what order."""
