"""The ``excentra`` command: ``excentra <command> [<subcommand>] [options]``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from excentra.logs import JsonFormatter, configure_logging

log = logging.getLogger("excentra.cli")

DEFAULT_PORT = 3000


def _bench(argv: list[str]) -> None:
    from excentra.bench import chain, engine, http, pipeline, ws  # noqa: PLC0415 (benching)

    targets: dict[str, Callable[[list[str]], None]] = {"engine": engine.main,
                                                       "pipeline": pipeline.main,
                                                       "http": http.main, "ws": ws.main,
                                                       "chain": chain.main}
    if not argv or argv[0] not in targets:
        raise SystemExit(f"usage: excentra bench {{{','.join(targets)}}} [options]")
    targets[argv[0]](argv[1:])


def _demo(argv: list[str]) -> None:
    from excentra.demo import main as demo  # noqa: PLC0415

    demo(argv)


def _serve_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="excentra serve",
                                     description="Run the exchange's HTTP and WebSocket server.")
    parser.add_argument("--host", default="0.0.0.0",  # noqa: S104 (a server: all interfaces)
                        help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or DEFAULT_PORT),
                        help=f"port to listen on (default $PORT or {DEFAULT_PORT})")
    parser.add_argument("--database-url", default=None,
                        help="overrides $DATABASE_URL (default: the embedded SQLite file)")
    return parser.parse_args(argv)


def _serve(argv: list[str]) -> None:
    import uvicorn  # noqa: PLC0415

    from excentra.http.app import create_app  # noqa: PLC0415
    from excentra.http.config import Settings  # noqa: PLC0415
    from excentra.http.ws import uvicorn_options  # noqa: PLC0415

    args = _serve_arguments(argv)
    overrides = {"database_url": args.database_url} if args.database_url else {}
    app = create_app(Settings.from_env(**overrides))
    _log_uvicorn_as_json()
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
    server.run()
    if not server.started:
        raise SystemExit(3)  # startup failed (uvicorn's own code for it); logged above


def _stopped_by_signal(signum: int, _frame: FrameType | None) -> None:
    log.info("stopped by signal", extra={"signal": signal.Signals(signum).name})


def _log_uvicorn_as_json() -> None:
    """uvicorn's own messages (startup, bad requests) as our JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_without_color)
    uv = logging.getLogger("uvicorn")
    uv.handlers = [handler]
    uv.setLevel(logging.getLogger("excentra").level)
    uv.propagate = False


def _without_color(record: logging.LogRecord) -> bool:
    record.__dict__.pop("color_message", None)  # the same text with terminal escapes
    return True


def _admin(argv: list[str]) -> None:
    from excentra.cli_accounts import admin_main  # noqa: PLC0415

    admin_main(argv)


def _users(argv: list[str]) -> None:
    from excentra.cli_accounts import users_main  # noqa: PLC0415

    users_main(argv)


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "serve": _serve, "admin": _admin, "users": _users, "bench": _bench, "demo": _demo}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    configure_logging()
    if not args or args[0] not in COMMANDS:
        names = ", ".join(COMMANDS)
        raise SystemExit(f"usage: excentra <command> ...\ncommands: {names}")
    logging.getLogger("excentra").debug("command %s", args)
    COMMANDS[args[0]](args[1:])
