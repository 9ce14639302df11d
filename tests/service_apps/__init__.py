"""Tiny servers and spec builders used by the service tests (not collected as tests)."""
