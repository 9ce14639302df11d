"""Command line of the reference server: ``ws-resilience-server`` / ``python -m
pytest_ws_resilience.testing``.

For running the server by hand (demos, a client under development, ``--ws-url``
against it) and for ``--ws-server-cmd``. Once listening it prints exactly one line
``ws-resilience-server listening on ws://HOST:PORT/`` that scripts can wait for.
Bad options end with exit status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_ws_resilience.redaction import RedactingFilter, redact
from pytest_ws_resilience.testing.faults import FAULTS, parse_faults
from pytest_ws_resilience.testing.server import ReferenceServer
from pytest_ws_resilience.testing.server_config import SERVER_AUTH_METHODS, ServerConfig

__all__ = ["DEFAULT_SECRET_ENV", "PROG", "build_parser", "config_from_args", "main"]

PROG = "ws-resilience-server"
#: Environment variable read for the HS256 secret when no option names one.
DEFAULT_SECRET_ENV = "WS_RESILIENCE_SECRET"
_STOP_TIMEOUT_S = 5.0


class UsageError(Exception):
    """A bad command line; printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the pytest-ws-resilience reference server (a simulated agent "
        "backend with JWT auth) on a loopback port.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 (default) = a free one")
    auth = parser.add_argument_group("authentication")
    auth.add_argument(
        "--secret",
        help=f"HS256 secret (default: ${DEFAULT_SECRET_ENV}; prefer an env var, "
        "command lines are visible to other users)",
    )
    auth.add_argument("--secret-env", metavar="NAME", help="read the HS256 secret from $NAME")
    auth.add_argument("--public-key-file", metavar="PATH", help="PEM RSA public key (RS256)")
    auth.add_argument("--no-auth", action="store_true", help="accept connections without a token")
    auth.add_argument(
        "--auth",
        action="append",
        metavar="METHOD",
        help=f"accepted token transport, repeatable ({', '.join(SERVER_AUTH_METHODS)}; "
        "default: all)",
    )
    auth.add_argument("--audience", help="required 'aud' claim")
    auth.add_argument("--issuer", help="required 'iss' claim")
    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help=f"turn on a fault, repeatable ({', '.join(sorted(FAULTS))})",
    )
    behaviour.add_argument(
        "--agent-delay", type=float, default=0.002, help="seconds between agent events"
    )
    behaviour.add_argument("--thinking-steps", type=int, default=2, help="agent_thinking events")
    behaviour.add_argument(
        "--max-size", type=int, default=5 * 1024 * 1024, help="max message bytes (1009 above)"
    )
    behaviour.add_argument(
        "--ping-interval", type=float, default=20.0, help="keepalive ping seconds; 0 = off"
    )
    behaviour.add_argument(
        "--ping-timeout", type=float, default=20.0, help="pong wait seconds; 0 = forever"
    )
    behaviour.add_argument(
        "--recv-timeout",
        type=float,
        default=10.0,
        help="recv timeout advertised in connection_established",
    )
    behaviour.add_argument(
        "--slow-accept", type=float, default=2.0, help="handshake delay of the slow_accept fault"
    )
    behaviour.add_argument(
        "--join-delay",
        type=float,
        default=0.005,
        help="seconds a room join takes (the window of the join_race fault)",
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="logging level (DEBUG, INFO, WARNING, ...)"
    )
    return parser


def _secret(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    if args.secret:
        return str(args.secret)
    if args.secret_env:
        value = environ.get(args.secret_env)
        if not value:
            raise UsageError(f"environment variable {args.secret_env} (--secret-env) is not set")
        return value
    return environ.get(DEFAULT_SECRET_ENV) or None


def _public_key(args: argparse.Namespace) -> str | None:
    if not args.public_key_file:
        return None
    try:
        return Path(args.public_key_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --public-key-file: {exc.strerror}: {exc.filename}") from exc


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """The `ServerConfig` an already parsed command line asks for.

    Raises:
        UsageError: one line saying what is wrong and what to pass.
    """
    environ = os.environ if environ is None else environ
    try:
        faults = parse_faults(args.fault)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    secret = _secret(args, environ)
    public_key = _public_key(args)
    if not args.no_auth and not secret and not public_key:
        raise UsageError(
            f"no key to verify tokens: pass --secret, --secret-env NAME, "
            f"--public-key-file PATH or set ${DEFAULT_SECRET_ENV} (or --no-auth)"
        )
    try:
        return ServerConfig(
            host=args.host,
            port=args.port,
            secret=secret,
            public_key=public_key,
            audience=args.audience,
            issuer=args.issuer,
            require_auth=not args.no_auth,
            accepted_auth=tuple(args.auth) if args.auth else SERVER_AUTH_METHODS,
            agent_delay_s=args.agent_delay,
            thinking_steps=args.thinking_steps,
            max_message_size=args.max_size,
            ping_interval=args.ping_interval or None,
            ping_timeout=args.ping_timeout or None,
            recv_timeout=args.recv_timeout,
            slow_accept_s=args.slow_accept,
            join_delay_s=args.join_delay,
            faults=faults,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


async def serve_until_signalled(config: ServerConfig) -> None:
    """Run the server until SIGINT or SIGTERM, then stop it (bounded)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. Windows
            loop.add_signal_handler(signum, stop.set)
    server = ReferenceServer(config)
    await server.start()
    try:
        print(f"{PROG} listening on {server.url}", flush=True)
        faults = ", ".join(sorted(server.faults)) or "none"
        print(f"{PROG} auth: {config.auth_mode}; faults: {faults}", flush=True)
        await stop.wait()
    finally:
        await server.stop(_STOP_TIMEOUT_S)


def _setup_logging(level_name: str) -> None:
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise UsageError(f"unknown --log-level {level_name!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 after a signal, 2 on bad options)."""
    args = build_parser().parse_args(argv)
    try:
        _setup_logging(args.log_level)
        config = config_from_args(args)
    except UsageError as exc:
        print(f"{PROG}: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_until_signalled(config))
    except KeyboardInterrupt:  # a second Ctrl-C, or no signal handler support
        return 0
    except OSError as exc:  # e.g. the port is taken
        where = f"{config.host}:{config.port}"
        print(f"{PROG}: error: cannot listen on {where}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
