"""The ``excentra`` command: ``excentra <command> [<subcommand>] [options]``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from excentra.logs import configure_logging


def _bench(argv: list[str]) -> None:
    from excentra.bench import engine, pipeline  # noqa: PLC0415 (load only the command that runs)

    targets: dict[str, Callable[[list[str]], None]] = {"engine": engine.main,
                                                       "pipeline": pipeline.main}
    if not argv or argv[0] not in targets:
        raise SystemExit(f"usage: excentra bench {{{','.join(targets)}}} [options]")
    targets[argv[0]](argv[1:])


def _demo(argv: list[str]) -> None:
    from excentra.demo import main as demo  # noqa: PLC0415

    demo(argv)


COMMANDS: dict[str, Callable[[list[str]], None]] = {"bench": _bench, "demo": _demo}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    configure_logging()
    if not args or args[0] not in COMMANDS:
        names = ", ".join(COMMANDS)
        raise SystemExit(f"usage: excentra <command> ...\ncommands: {names}")
    logging.getLogger("excentra").debug("command %s", args)
    COMMANDS[args[0]](args[1:])
