"""The ``excentra`` command: ``excentra <command> [<subcommand>] [options]``.

Each command owns its options: ``serve`` here, the account commands in
``excentra.cli_accounts``, each benchmark and the demos in their modules. This module
lists them (``excentra --help``), says what to type when a name is mistyped, and hands the
rest of the command line to the command.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING

from excentra.logs import JsonFormatter, configure_logging

if TYPE_CHECKING:
    from excentra.db import Database
    from excentra.http.services import Services

log = logging.getLogger("excentra.cli")

DEFAULT_PORT = 3000

Handler = Callable[[list[str]], None]

EXAMPLES = """examples:
  excentra serve                                  # the API on port 3000, SQLite in ./excentra.db
  excentra admin create --email you@example.com   # the first admin (asks for a password)
  excentra demo engine                            # a narrated trading session, no setup
  excentra bench engine                           # the matching engine against a baseline

`excentra <command> --help` tells more about each command.
"""

SERVE_EXAMPLES = """examples:
  excentra serve                                   # 0.0.0.0:3000, ./excentra.db
  excentra serve --host 127.0.0.1 --port 8080
  PORT=8080 DATABASE_URL=postgresql://excentra@db/excentra excentra serve

On start it says where the database is, where the API docs are, and, while no admin
exists, the command that creates one. Other settings come from the environment
(see the README's configuration table).
"""

BENCH_EXAMPLES = """examples:
  excentra bench engine                 # the matching engine against a pure-Python baseline
  excentra bench pipeline --runs 1      # durable orders per second through the actors
  excentra bench engine --help          # each benchmark's own options

Every figure is reported as a ratio to a yardstick measured in the same run.
"""

DEMO_EXAMPLES = """examples:
  excentra demo engine        # a few users trade on one order book (no database)
  excentra demo supervisor    # a book actor dies mid-flow; nothing acknowledged is lost
  excentra demo chain         # deposits and withdrawals on an in-process Ethereum chain
"""


def _bench_targets() -> dict[str, Handler]:
    from excentra.bench import (  # noqa: PLC0415 (benching)
        chain,
        engine,
        http,
        pipeline,
        soak,
        ws,
    )

    return {
        "engine": engine.main,
        "pipeline": pipeline.main,
        "http": http.main,
        "ws": ws.main,
        "chain": chain.main,
        "soak": soak.main,
    }


def _bench(argv: list[str]) -> None:
    targets = _bench_targets()
    parser = _parser("excentra bench", "Measure the exchange: each benchmark prints a "
                     "table, then one machine-readable key=value line.", BENCH_EXAMPLES)
    _delegated(parser, "benchmark", {name: _summary(main) for name, main in targets.items()})
    _dispatch(parser, "benchmark", targets, argv)


def _demo(argv: list[str]) -> None:
    from excentra.demo import DEMOS  # noqa: PLC0415 (loads the actor core)

    parser = _parser("excentra demo", "Short, narrated runs of parts of the exchange.",
                     DEMO_EXAMPLES)
    parser.add_argument("name", choices=sorted(DEMOS), help="which demo")
    DEMOS[parser.parse_args(argv).name]()


def _summary(main: Handler) -> str:
    """The first line of a command module's docstring, without its ``name``: prefix."""
    doc = sys.modules[main.__module__].__doc__ or ""
    return doc.strip().splitlines()[0].partition(": ")[2].replace("``", "") if doc else ""


def _serve_arguments(argv: list[str]) -> argparse.Namespace:
    parser = _parser("excentra serve", "Run the exchange's HTTP and WebSocket server.",
                     SERVE_EXAMPLES)
    parser.add_argument("--host", default="0.0.0.0",  # noqa: S104 (a server: all interfaces)
                        help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"port to listen on (default $PORT or {DEFAULT_PORT})")
    parser.add_argument("--database-url", default=None,
                        help="overrides $DATABASE_URL (default: the embedded SQLite file "
                             "excentra.db in the current directory)")
    args = parser.parse_args(argv)
    if args.port is None:
        port = os.environ.get("PORT") or str(DEFAULT_PORT)
        if not port.isdigit():
            parser.error(f"PORT must be a port number, got {port!r}")
        args.port = int(port)
    return args


def _serve(argv: list[str]) -> None:
    import uvicorn  # noqa: PLC0415

    from excentra.http.app import create_app  # noqa: PLC0415
    from excentra.http.config import Settings  # noqa: PLC0415
    from excentra.http.ws import uvicorn_options  # noqa: PLC0415

    args = _serve_arguments(argv)
    _require_free_port(args.host, args.port)
    overrides = {"database_url": args.database_url} if args.database_url else {}
    try:
        settings = Settings.from_env(**overrides)
    except ValueError as exc:  # a bad variable: its message says which and what it wants
        print(f"excentra serve: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app = create_app(settings, startups=[_first_minute(args.host, args.port)])
    bind_errors = _log_uvicorn_as_json()
    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, lifespan="on", log_config=None,
        access_log=False,  # RequestIdMiddleware logs each request, with its id
        # client addresses are ours to judge (TRUSTED_PROXIES): uvicorn must not rewrite
        # them from X-Forwarded-For on its own
        proxy_headers=False, server_header=False, timeout_graceful_shutdown=10,
        **uvicorn_options()))
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, restores the previous handlers and
    # re-raises the signal; these handlers make that a clean exit (status 0), not a death
    # by signal
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped_by_signal)
    try:
        server.run()
    except SystemExit:
        if bind_errors.caught is None:
            raise
    if bind_errors.caught is not None:  # taken between our check and uvicorn's bind
        raise SystemExit(_port_problem(args.host, args.port, bind_errors.caught))
    if not server.started:
        raise SystemExit(3)  # startup failed (uvicorn's own code for it); logged above


def _require_free_port(host: str, port: int) -> None:
    """Fail with one line naming ``--port``/``PORT`` if the address cannot be bound, before
    the exchange starts (uvicorn binds only after the app's startup)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                    flags=socket.AI_PASSIVE)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # as uvicorn binds: a port left in TIME_WAIT by a previous run is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except (OSError, OverflowError) as exc:
        raise SystemExit(_port_problem(host, port, exc)) from None


def _port_problem(host: str, port: int, exc: BaseException) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return (f"excentra serve: cannot listen on {host}:{port} ({reason.lower()}); "
            "choose another port with --port or PORT")


def _first_minute(host: str, port: int) -> Callable[[Services], Awaitable[None]]:
    """A startup step: where the database and the API docs are and, while no admin
    exists, the command that creates one. Logged (a JSON line, as every line on stderr
    when a collector reads it); in a terminal also said once in plain words."""

    async def tell(services: Services) -> None:
        lines = await first_minute_lines(services.db, f"http://{_reachable(host)}:{port}")
        log.info("; ".join(lines).replace("\n  ", " "))
        if sys.stderr.isatty():
            print("\n".join(lines), file=sys.stderr, flush=True)

    return tell


async def first_minute_lines(db: Database, base_url: str) -> list[str]:
    """What a newcomer needs from a starting server, one line each."""
    from excentra.cli_accounts import admin_hint, database_location, has_admin  # noqa: PLC0415

    lines = [f"Database: {database_location(db.url)}", f"API docs: {base_url}/docs"]
    if not await has_admin(db):
        lines.append(f"No admin account yet. Create one with:\n  {admin_hint(db.url)}")
    return lines


def _reachable(host: str) -> str:
    """An address a browser on this machine can use for ``host``."""
    if host in ("", "0.0.0.0"):  # noqa: S104
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _stopped_by_signal(signum: int, _frame: FrameType | None) -> None:
    log.info("stopped by signal", extra={"signal": signal.Signals(signum).name})


class _BindErrors(logging.Filter):
    """Takes uvicorn's bind failure (it logs the ``OSError`` itself, then exits) out of
    the log, for ``_serve`` to say it the way ``_require_free_port`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.caught: OSError | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, OSError):
            self.caught = record.msg
            return False
        return True


def _log_uvicorn_as_json() -> _BindErrors:
    """uvicorn's own messages (startup, bad requests) as our JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_without_color)
    uv = logging.getLogger("uvicorn")
    uv.handlers = [handler]
    uv.setLevel(logging.getLogger("excentra").level)
    uv.propagate = False
    bind_errors = _BindErrors()
    logging.getLogger("uvicorn.error").addFilter(bind_errors)
    return bind_errors


def _without_color(record: logging.LogRecord) -> bool:
    record.__dict__.pop("color_message", None)  # the same text with terminal escapes
    return True


def _admin(argv: list[str]) -> None:
    from excentra.cli_accounts import admin_main  # noqa: PLC0415

    admin_main(argv)


def _log(argv: list[str]) -> None:
    from excentra.cli_log import main as log_main  # noqa: PLC0415

    log_main(argv)


def _users(argv: list[str]) -> None:
    from excentra.cli_accounts import users_main  # noqa: PLC0415

    users_main(argv)


COMMANDS: dict[str, tuple[Handler, str]] = {
    "serve": (_serve, "run the HTTP and WebSocket server"),
    "admin": (_admin, "create an admin account (admin create)"),
    "users": (_users, "change a user's role (users promote)"),
    "log": (_log, "the event log: status, truncate behind the projection"),
    "demo": (_demo, "short narrated runs: engine, supervisor, chain"),
    "bench": (_bench, "measure the engine, the pipeline, HTTP, WebSocket fan-out, ..."),
}
"""Each command: its handler (given the rest of the command line) and a summary."""

QUIET = {"admin", "users", "demo", "log"}
"""Commands for people: their logs start at warnings unless ``LOG_LEVEL`` says otherwise
(their answer is what they print)."""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else None
    configure_logging(os.environ.get("LOG_LEVEL") or
                      ("WARNING" if command in QUIET else "INFO"))
    parser = _parser("excentra", "A centralized crypto-exchange backend.", EXAMPLES)
    parser.add_argument("--version", action="version",
                        version=f"excentra {importlib.metadata.version('excentra')}")
    _delegated(parser, "command", {name: summary for name, (_, summary) in COMMANDS.items()})
    logging.getLogger("excentra").debug("command %s", args)
    _dispatch(parser, "command", {name: handler for name, (handler, _) in COMMANDS.items()},
              args)


def _parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def _delegated(parser: argparse.ArgumentParser, what: str, summaries: dict[str, str]) -> None:
    """List the subcommands in ``parser``'s help; each parses its own options."""
    names = parser.add_subparsers(title=f"{what}s", metavar=f"<{what}>", dest=what)
    for name, summary in summaries.items():
        names.add_parser(name, help=summary, add_help=False)


def _dispatch(parser: argparse.ArgumentParser, what: str, handlers: dict[str, Handler],
              argv: list[str]) -> None:
    """Run the named subcommand with the rest of ``argv``; help, a usage error, or the
    closest name for anything else."""
    if argv and argv[0] in handlers:
        handlers[argv[0]](argv[1:])
        return
    if argv and not argv[0].startswith("-"):
        close = difflib.get_close_matches(argv[0], handlers, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        parser.error(f"unknown {what} '{argv[0]}'{hint}; choose from {', '.join(handlers)}")
    parser.parse_args(argv)  # --help, --version, or an unknown option: argparse answers
    parser.print_help(sys.stderr)  # nothing given
    raise SystemExit(2)
