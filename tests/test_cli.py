"""The ``excentra`` command as a newcomer meets it: help at every level, the version, a
mistyped command, a busy port, and what ``excentra serve`` says when it starts."""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from excentra import cli
from excentra.db import Database, migrate

EXCENTRA = [sys.executable, "-c", "from excentra.cli import main; main()"]


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """``main`` configures the ``excentra`` logger (level, a handler on this test's
    captured stderr): put it back as it was for the tests that follow."""
    logger = logging.getLogger("excentra")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers = handlers


def exit_code(argv: list[str]) -> int | str | None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    return exit_info.value.code


@pytest.mark.parametrize(("argv", "description"), [
    ([], "A centralized crypto-exchange backend."),
    (["serve"], "Run the exchange's HTTP and WebSocket server."),
    (["admin"], "Manage admin accounts."),
    (["admin", "create"], "Create a new account with the admin role"),
    (["users"], "Change existing users' roles."),
    (["users", "promote"], "Give an existing (registered) user the admin role"),
    (["demo"], "Short, narrated runs of parts of the exchange."),
    (["bench"], "Measure the exchange"),
    (["bench", "engine"], "a seeded order flow through"),
    (["log"], "the event log's state, and truncating it behind the projection"),
])
def test_help_at_every_level(argv: list[str], description: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--help", "-h"):
        assert exit_code([*argv, flag]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: excentra{''.join(' ' + a for a in argv)} ")
        assert description in out
        assert "examples:\n  excentra " in out


def test_help_lists_every_command_and_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "admin", "users", "demo", "bench"):
        assert f"\n    {command} " in out
    benches = list(cli._bench_targets())
    assert {"engine", "pipeline", "http", "ws", "chain"} <= set(benches)
    assert exit_code(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for bench in benches:
        assert f"\n    {bench} " in out
    for bench in benches:  # each benchmark's own options
        assert exit_code(["bench", bench, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: excentra bench {bench} ")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["--version"]) == 0
    assert capsys.readouterr().out == f"excentra {importlib.metadata.version('excentra')}\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["serv"], "excentra: error: unknown command 'serv' (did you mean 'serve'?)"),
    (["bnech"], "excentra: error: unknown command 'bnech' (did you mean 'bench'?)"),
    (["xyzzy"], "excentra: error: unknown command 'xyzzy'; choose from serve, admin"),
    (["bench", "engin"], "excentra bench: error: unknown benchmark 'engin' (did you mean "
                         "'engine'?)"),
    (["--frobnicate"], "excentra: error: unrecognized arguments: --frobnicate"),
])
def test_unknown_command(argv: list[str], message: str,
                         capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: excentra")
    assert message in err


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code([]) == 2
    err = capsys.readouterr().err
    assert "commands:" in err
    assert "examples:" in err


def test_the_unknown_command_runs_as_a_program() -> None:
    done = subprocess.run([*EXCENTRA, "serv"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert "unknown command 'serv' (did you mean 'serve'?)" in done.stderr
    assert "Traceback" not in done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "PORT", "ETH_RPC_URL", "LOG_LEVEL")}
    env["SEED_BOOK"] = "0"
    return env


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([*EXCENTRA, "serve", "--host", "127.0.0.1", "--port", str(port)],
                              capture_output=True, text=True, timeout=60, check=False,
                              env=child_env(), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (f"excentra serve: cannot listen on 127.0.0.1:{port} (address "
                           "already in use); choose another port with --port or PORT\n")
    assert not (tmp_path / "excentra.db").exists()  # refused before anything started


def test_a_bad_port_variable_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([*EXCENTRA, "serve"], capture_output=True, text=True, timeout=60,
                          check=False, env={**child_env(), "PORT": "http"}, cwd=tmp_path)
    assert done.returncode == 2
    assert "PORT must be a port number, got 'http'" in done.stderr


def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run([*EXCENTRA, "serve", "--host", "127.0.0.1", "--port", str(port)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**child_env(), "DEPOSIT_LIMITS": "BTC=lots"}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("excentra serve: configuration error: ")
    assert "DEPOSIT_LIMITS" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def serve_once(tmp_path: Path) -> list[dict[str, object]]:
    """Start ``excentra serve`` in ``tmp_path``, wait until healthy, stop it; its log."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*EXCENTRA, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=child_env(), cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = log.read_text()
    assert "Traceback" not in text
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [{**e, "port": port} for e in entries]


def test_startup_says_where_things_are_and_what_to_do_next(tmp_path: Path) -> None:
    entries = serve_once(tmp_path)  # every line on a non-terminal stderr is JSON
    said = [str(e["msg"]) for e in entries if str(e["msg"]).startswith("Database")]
    database = tmp_path / "excentra.db"
    port = entries[0]["port"]
    assert said == [f"Database: {database}; API docs: http://127.0.0.1:{port}/docs; No admin "
                    "account yet. Create one with: excentra admin create --email "
                    f"you@example.com --database-url sqlite:///{database}"]
    made = subprocess.run([*EXCENTRA, "admin", "create", "--email", "root@example.com",
                           "--password-stdin", "--database-url", f"sqlite:///{database}"],
                          input="rootpassword1\n", capture_output=True, text=True,
                          timeout=120, env=child_env(), cwd=tmp_path / "..", check=False)
    assert made.returncode == 0, made.stderr
    entries = serve_once(tmp_path)
    port = entries[0]["port"]
    assert [e["msg"] for e in entries if str(e["msg"]).startswith("Database")] == [
        f"Database: {database}; API docs: http://127.0.0.1:{port}/docs"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.asyncio
async def test_in_a_terminal_startup_speaks_plainly(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    async with Database(f"sqlite:///{tmp_path / 'x.db'}") as db:
        await migrate(db)
        step = cli._first_minute("0.0.0.0", 3000)  # noqa: S104 (what the address means)
        await step(SimpleNamespace(db=db))  # type: ignore[arg-type]
    assert terminal.getvalue() == (
        f"Database: {tmp_path / 'x.db'}\n"
        "API docs: http://127.0.0.1:3000/docs\n"
        "No admin account yet. Create one with:\n"
        f"  excentra admin create --email you@example.com --database-url "
        f"sqlite:///{tmp_path / 'x.db'}\n")
