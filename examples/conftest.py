"""``pytest examples`` runs the suites against the embedded reference server.

The cookbook's projects (examples/cookbook/*/) are pytest projects of their own, each
with its own pyproject.toml naming its server: run them with ``-c`` (see the Makefile's
``demo`` target and docs/cookbook.md), never as part of this directory's suites.
"""

__all__: list[str] = []

collect_ignore = ["cookbook"]
