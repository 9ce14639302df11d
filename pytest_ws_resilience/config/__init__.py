"""Settings of a run: profiles, timeouts, loading and validation."""
