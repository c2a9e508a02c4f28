"""``excentra admin create`` and ``excentra users promote``: run against a fresh database
(migrations applied by the command), then the account works through the app."""

from __future__ import annotations

import asyncio
import re

import pytest

from excentra.cli_accounts import admin_main, users_main
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
    out = capsys.readouterr().out.strip()
    found = re.fullmatch(r"created admin boss@example\.com \(([0-9a-f-]{36})\)", out)
    assert found is not None, out
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
    assert "created admin env@example.com" in capsys.readouterr().out
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
