"""The pure rules of the services' pytest glue: marker arguments, skip-or-fail, reasons.

No I/O and no pytest here, so each rule is unit-tested as a plain function: which names
a ``ws_services`` marker asks for, whether a test that cannot get its services is
skipped or failed (``settings.services.required``), and the one
line that says why.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

from pytest_ws_resilience.plugin.markers import marker_names

__all__ = [
    "Verdict",
    "services_marker_names",
    "skip_or_fail",
    "started_line",
    "unavailable_reason",
    "unknown_service_reason",
]

Verdict = Literal["skip", "fail"]


def skip_or_fail(*, required: bool) -> Verdict:
    """A test whose services cannot run is skipped, or failed when services are required.

    Skipping is right on a laptop without Docker; in CI the same skip would hide a
    broken engine behind a green run, hence the switch.
    """
    return "fail" if required else "skip"


def services_marker_names(args: Sequence[object], *, test: str = "test") -> tuple[str, ...]:
    """The service names of a ``ws_services`` marker (see `markers.marker_names`)."""
    return marker_names(args, marker="ws_services", kind="service", example="api", test=test)


def unknown_service_reason(name: str, known: Collection[str]) -> str:
    """One line for a service name nobody defined, listing the names that exist."""
    if not known:
        return (
            f"unknown service {name!r}: no services are defined (add a "
            f"[tool.ws_resilience.services.{name}] table or ws_services.add(ServiceSpec(...)))"
        )
    return f"unknown service {name!r}; known services: {', '.join(sorted(known))}"


def unavailable_reason(name: str, cause: str) -> str:
    """One line saying which service could not run and why (the cause's first line).

    Later lines (log tails) belong in the failure's body, not in a skip summary. A cause
    that already names the service (``service 'api' was not ready ...``) is kept as is.
    """
    lines = cause.strip().splitlines()
    first = lines[0].strip() if lines else "unknown cause"
    if first.startswith(f"service {name!r}"):
        return first
    return f"service {name!r} unavailable: {first}"


def started_line(
    name: str,
    *,
    how: str,
    backend: str,
    url: str,
    ident: str | None = None,
    image: str | None = None,
    ready_s: float | None = None,
) -> str:
    """One line for the run's list of started services (``ServicesRuntime.started``), e.g.
    ``api: started docker container 1a2b3c4d5e6f (image x) at ws://127.0.0.1:4100/, ready
    in 0.42 s``. ``how`` says what this process did: started, attached (shared), ..."""
    what = "docker container" if backend == "docker" else "process"
    parts = [f"{name}: {how} {what}"]
    if ident:
        parts.append(ident)
    if image:
        parts.append(f"({image})")
    parts.append(f"at {url}")
    line = " ".join(parts)
    if ready_s is not None:
        line += f", ready in {ready_s:.2f} s"
    return line
