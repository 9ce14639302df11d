"""Isolation: fail a test when one user receives another user's data.

Pure (no I/O; a client is only touched through its observer callbacks). By job:

- `markers`: what a marker is (kinds, a user's identity markers, untainted keys);
- `frames`: which strings of a frame are searched, and what a send carried;
- `index`: the one-pass multi-marker substring search;
- `violation`: `IsolationViolation` and the report a failing test prints;
- `detector`: `IsolationDetector`, the rules that turn a match into a violation;
- `guard`: `IsolationGuard`, the ``ws_isolation`` fixture's verdict over a detector.
"""
