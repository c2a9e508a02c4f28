"""``excentra admin create`` and ``excentra users promote``: run against a fresh database
(migrations applied by the command), then the account works through the app."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from excentra.cli_accounts import admin_hint, admin_main, database_location, users_main
from excentra.http.app import create_app
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for

pytestmark = pytest.mark.asyncio

LOGIN = "/api/v1/auth/login"


async def login_role(api: Api, email: str, password: str) -> str:
    r = await api.client.post(LOGIN, json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    api.client.cookies.clear()
    token = r.json()["access_token"]
    principal = api.services.tokens.decode(token)
    assert principal is not None
    return principal.role


async def run(main: object, argv: list[str]) -> None:
    # The commands call asyncio.run: give them a thread of their own.
    assert callable(main)
    await asyncio.to_thread(main, argv)


async def test_admin_create_then_log_in(database_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    await run(admin_main, ["create", "--email", "Boss@Example.com", "--password",
                           "supersecret", "--database-url", database_url])
    out, err = capsys.readouterr()
    found = re.fullmatch(r"Created admin boss@example\.com \(id ([0-9a-f-]{36})\) in (.+)",
                         out.strip())
    assert found is not None, out
    assert found[2] == database_location(database_url)
    assert "shell history" in err  # --password works, with a warning
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        assert await login_role(api, "boss@example.com", "supersecret") == "admin"
        r = await api.client.get("/api/v1/users/me", headers={
            "Authorization": f"Bearer {api.services.tokens.access(found[1], 'admin')}"})
        assert (r.json()["email"], r.json()["role"]) == ("boss@example.com", "admin")


async def test_admin_create_refuses_an_existing_email(database_url: str) -> None:
    argv = ["create", "--email", "dup@example.com", "--password", "supersecret",
            "--database-url", database_url]
    await run(admin_main, argv)
    argv[2] = "DUP@example.com"
    with pytest.raises(SystemExit) as exit_info:
        await run(admin_main, argv)
    assert exit_info.value.code == ("a user with email dup@example.com exists already; to "
                                    "make it an admin use: excentra users promote --email "
                                    "DUP@example.com")


@pytest.mark.parametrize(("email", "password", "message"), [
    ("not-an-email", "supersecret", "invalid email address"),
    ("a@example.com", "short", "Password should be at least 8 characters"),
])
async def test_admin_create_validates(database_url: str, capsys: pytest.CaptureFixture[str],
                                      email: str, password: str, message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        await run(admin_main, ["create", "--email", email, "--password", password,
                               "--database-url", database_url])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


async def test_database_url_from_the_environment(database_url: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    await run(admin_main, ["create", "--email", "env@example.com", "--password",
                           "supersecret"])
    assert "Created admin env@example.com" in capsys.readouterr().out
    await run(users_main, ["promote", "--email", "env@example.com", "--role", "user"])
    assert capsys.readouterr().out.strip() == "env@example.com is now user"


async def test_promote_a_registered_user(database_url: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        r = await api.client.post("/api/v1/auth/register",
                                  json={"email": "Rose@Example.com", "password": "password123"})
        assert r.status_code == 201
        cookie = r.cookies["refresh_token"]
        api.client.cookies.clear()
        await run(users_main, ["promote", "--email", "ROSE@example.com",
                               "--database-url", database_url])
        assert capsys.readouterr().out.strip() == "rose@example.com is now admin"
        assert await login_role(api, "rose@example.com", "password123") == "admin"
        # An open session picks the role up at its next refresh.
        r = await api.client.post("/api/v1/auth/refresh",
                                  headers={"Cookie": f"refresh_token={cookie}"})
        principal = api.services.tokens.decode(r.json()["access_token"])
        assert principal is not None
        assert principal.role == "admin"


async def test_promote_refusals(database_url: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        await run(users_main, ["promote", "--email", "Ghost@example.com",
                               "--database-url", database_url])
    assert exit_info.value.code == "no user with email ghost@example.com"
    with pytest.raises(SystemExit) as exit_info:
        await run(users_main, ["promote", "--email", "system@excentra.com",
                               "--database-url", database_url])
    assert exit_info.value.code == ("system@excentra.com is a system account; its role "
                                    "cannot change")


async def test_usage_errors() -> None:
    for main, argv in ((admin_main, []), (admin_main, ["delete"]),
                       (users_main, ["promote"]),
                       (users_main, ["promote", "--email", "a@b.co", "--role", "system"])):
        with pytest.raises(SystemExit) as exit_info:
            await run(main, argv)
        assert exit_info.value.code == 2


EXCENTRA = [sys.executable, "-c", "from excentra.cli import main; main()"]


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "LOG_LEVEL")}


async def test_admin_create_reads_the_password_from_stdin(database_url: str,
                                                          tmp_path: Path) -> None:
    done = await asyncio.to_thread(
        subprocess.run, [*EXCENTRA, "admin", "create", "--email", "pipe@example.com",
                         "--password-stdin", "--database-url", database_url],
        input="from stdin 123\n", capture_output=True, text=True, timeout=120,
        env=child_env(), cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Created admin pipe@example.com (id ")
    assert done.stderr == ""  # no log line for the normal outcome, no warning
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        assert await login_role(api, "pipe@example.com", "from stdin 123") == "admin"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_admin_create_asks_twice_in_a_terminal(database_url: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["typed secret 1", "typed secret 1", "one thing", "another"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("excentra.cli_accounts.getpass.getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", Terminal())
    await run(admin_main, ["create", "--email", "tty@example.com", "--database-url",
                           database_url, "--json"])
    created = json.loads(capsys.readouterr().out)
    assert (created["email"], created["role"]) == ("tty@example.com", "admin")
    assert len(prompts) == 2
    with pytest.raises(SystemExit) as exit_info:  # the two answers differ
        await run(admin_main, ["create", "--email", "typo@example.com", "--database-url",
                               database_url])
    assert exit_info.value.code == 2
    assert "the two passwords differ; nothing was created" in capsys.readouterr().err
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        assert await login_role(api, "tty@example.com", "typed secret 1") == "admin"
        r = await api.client.post(LOGIN, json={"email": "typo@example.com",
                                               "password": "one thing"})
        assert r.status_code == 401


async def test_admin_create_without_a_password_source(database_url: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not a terminal\n"))
    with pytest.raises(SystemExit) as exit_info:
        await run(admin_main, ["create", "--email", "a@example.com", "--database-url",
                               database_url])
    assert exit_info.value.code == 2
    assert "--password-stdin" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # one source at a time
        await run(admin_main, ["create", "--email", "a@example.com", "--password-stdin",
                               "--password", "supersecret", "--database-url", database_url])
    assert exit_info.value.code == 2


async def test_where_the_database_is_and_how_to_reach_it(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_location("") == str(tmp_path / "excentra.db")
    assert database_location("sqlite:///data/x.db") == str(tmp_path / "data" / "x.db")
    assert (admin_hint("") == "excentra admin create --email you@example.com "
            f"--database-url sqlite:///{tmp_path / 'excentra.db'}")
    secret = "postgresql://app:s3cret@db.example:5432/excentra"
    assert database_location(secret) == "postgresql://app@db.example:5432/excentra"
    assert "s3cret" not in admin_hint(secret)
    assert admin_hint("postgres://app@db/x").endswith("--database-url postgresql://app@db/x")
