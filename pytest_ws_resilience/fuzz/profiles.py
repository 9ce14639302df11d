"""How long fuzzing runs: built-in profiles, and which one a run uses.

A profile is a budget: examples per ``ws_fuzz`` call, a wall-clock bound of the whole
call (search and shrinking) and a bound on reconnections after failures. ``local`` and
``ci`` are short (a suite stays fast), ``nightly`` is long.

Which one, highest first (`choose_profile`): ``ws_fuzz(profile=...)``; the option
``--ws-fuzz-profile``; the environment variable ``WS_FUZZ_PROFILE``; the run's env
(``--ws-env``) when it is named like a profile (``--ws-env=nightly``); ``ci`` when the
variable ``CI`` is set (as CI services set it); else ``local``.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pytest_ws_resilience.errors import WsConfigError

__all__ = ["DEFAULT_PROFILE", "FUZZ_PROFILES", "PROFILE_VARIABLE", "FuzzProfile", "choose_profile"]

#: The environment variable naming a profile.
PROFILE_VARIABLE = "WS_FUZZ_PROFILE"


@dataclass(frozen=True)
class FuzzProfile:
    """A fuzzing budget.

    Attributes:
        name: "local", "ci" or "nightly".
        max_examples: valid examples Hypothesis runs per call before it stops
            searching (shrinking a failure comes on top).
        budget_s: bound of one call, search and shrinking, in seconds; past it the
            run stops and reports what it had (the failure shrunk so far).
        max_reconnects: reconnections after failing examples per call; past it the
            run stops (a server that fails every message is found long before).
    """

    name: str
    max_examples: int
    budget_s: float
    max_reconnects: int


#: The built-in profiles.
FUZZ_PROFILES: Mapping[str, FuzzProfile] = {
    "local": FuzzProfile("local", max_examples=500, budget_s=120.0, max_reconnects=300),
    "ci": FuzzProfile("ci", max_examples=500, budget_s=180.0, max_reconnects=300),
    "nightly": FuzzProfile("nightly", max_examples=5000, budget_s=3600.0, max_reconnects=3000),
}
DEFAULT_PROFILE = "local"


def _named(name: str, source: str) -> FuzzProfile:
    profile = FUZZ_PROFILES.get(name)
    if profile is None:
        raise WsConfigError(
            f"{source} names no fuzz profile: {name!r} (expected one of {', '.join(FUZZ_PROFILES)})"
        )
    return profile


def choose_profile(
    *,
    explicit: str | None = None,
    option: str | None = None,
    environ: Mapping[str, str] | None = None,
    ws_env: str | None = None,
) -> tuple[FuzzProfile, str]:
    """The profile a call uses and where its name came from (for the result's text).

    Raises:
        WsConfigError: a profile name that is not one of `FUZZ_PROFILES` (one line).
    """
    environ = environ or {}
    if explicit is not None:
        return _named(explicit, "ws_fuzz(profile=...)"), "ws_fuzz(profile=...)"
    if option:
        return _named(option, "--ws-fuzz-profile"), "--ws-fuzz-profile"
    variable = environ.get(PROFILE_VARIABLE, "")
    if variable:
        return _named(variable, PROFILE_VARIABLE), PROFILE_VARIABLE
    if ws_env is not None and ws_env in FUZZ_PROFILES and ws_env != DEFAULT_PROFILE:
        return FUZZ_PROFILES[ws_env], "--ws-env"
    if environ.get("CI", ""):
        return FUZZ_PROFILES["ci"], "CI"
    return FUZZ_PROFILES[DEFAULT_PROFILE], "default"
