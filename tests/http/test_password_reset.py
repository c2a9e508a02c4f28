"""Forgot/reset password end to end: the mail reaches a real SMTP server (aiosmtpd on a
free local port), the link in it resets the password once, and old sessions end."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from excentra.db import accounts
from excentra.http.app import create_app
from excentra.http.auth import token_hash
from excentra.http.mail import parse_smtp_url
from excentra.http.ratelimit import DEFAULT_POLICIES
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for

pytestmark = pytest.mark.asyncio

AUTH = "/api/v1/auth"
PASSWORD = "password123"
LINK = re.compile(r"http://localhost:3001/reset-password\?token=([0-9a-f]{128})")


@dataclass
class Inbox:
    """What the SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accept_mailer(_server: Any, _session: Any, _envelope: Any, mechanism: str,
                   data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"mailer", b"s3cret/pw")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            authenticator=_accept_mailer, auth_require_tls=False)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest_asyncio.fixture
async def mailing(database_url: str, smtp: tuple[Inbox, int]
                  ) -> AsyncIterator[tuple[Api, Inbox]]:
    inbox, port = smtp
    app = create_app(settings_for(database_url, smtp_url=f"smtp://127.0.0.1:{port}"),
                     passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        yield api, inbox


async def register(api: Api, address: str) -> httpx.Response:
    r = await api.client.post(f"{AUTH}/register", json={"email": address, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return r


async def forgot(api: Api, address: str) -> None:
    r = await api.client.post(f"{AUTH}/forgot-password", json={"email": address})
    assert r.status_code == 204, r.text
    assert r.content == b""


async def reset(api: Api, token: str, new_password: str) -> httpx.Response:
    return await api.client.post(f"{AUTH}/reset-password",
                                 json={"token": token, "new_password": new_password})


async def login_status(api: Api, address: str, password: str) -> int:
    r = await api.client.post(f"{AUTH}/login", json={"email": address, "password": password})
    api.client.cookies.clear()
    return r.status_code


def token_of(message: EmailMessage) -> str:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    [token] = LINK.findall(plain.get_content())
    assert LINK.findall(html.get_content()) == [token]
    return str(token)


async def test_reset_by_mail(mailing: tuple[Api, Inbox]) -> None:
    api, inbox = mailing
    r = await register(api, "pat@example.com")
    old_cookie = r.cookies["refresh_token"]
    api.client.cookies.clear()
    await forgot(api, "PAT@example.com")
    [message] = inbox.messages
    assert message["Subject"] == "Reset your Excentra password"
    assert message["To"] == "pat@example.com"
    assert message["From"] == "noreply@excentra.exchange"
    assert inbox.envelopes[0].rcpt_tos == ["pat@example.com"]
    plain = message.get_body(("plain",))
    assert plain is not None
    assert "15 minutes" in plain.get_content()
    token = token_of(message)
    stored = await api.services.db.fetch_val(
        "SELECT token_hash FROM password_reset_tokens", as_type=str)
    assert stored == token_hash(token)  # only the digest is kept
    r = await reset(api, token, "brand-new-pass")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert await login_status(api, "pat@example.com", PASSWORD) == 401
    assert await login_status(api, "pat@example.com", "brand-new-pass") == 200
    # Single use.
    r = await reset(api, token, "another-pass-1")
    assert (r.status_code, r.json()) == (400, {"error": "Invalid or expired reset token"})
    assert await login_status(api, "pat@example.com", "brand-new-pass") == 200
    # The sessions from before the reset are gone.
    r = await api.client.post(f"{AUTH}/refresh",
                              headers={"Cookie": f"refresh_token={old_cookie}"})
    assert (r.status_code, r.json()) == (
        401, {"error": "Invalid or expired refresh token, please log in again"})


async def test_earlier_reset_tokens_stay_valid(mailing: tuple[Api, Inbox]) -> None:
    api, inbox = mailing
    await register(api, "quinn@example.com")
    await forgot(api, "quinn@example.com")
    await forgot(api, "quinn@example.com")
    first, second = (token_of(m) for m in inbox.messages)
    assert first != second
    assert (await reset(api, first, "first-new-pass")).status_code == 204
    assert (await reset(api, second, "second-new-pass")).status_code == 204
    assert await login_status(api, "quinn@example.com", "second-new-pass") == 200


async def test_no_mail_for_unknown_or_system_accounts(mailing: tuple[Api, Inbox]) -> None:
    api, inbox = mailing
    await forgot(api, "nobody@example.com")
    await forgot(api, "system@excentra.com")
    await forgot(api, "not even an address")
    assert inbox.messages == []
    count = await api.services.db.fetch_val("SELECT COUNT(*) FROM password_reset_tokens",
                                            as_type=int)
    assert count == 0


async def test_expired_and_unknown_tokens(mailing: tuple[Api, Inbox]) -> None:
    api, inbox = mailing
    await register(api, "rita@example.com")
    await forgot(api, "rita@example.com")
    token = token_of(inbox.messages[0])
    r = await reset(api, "0" * 128, "brand-new-pass")
    assert (r.status_code, r.json()) == (400, {"error": "Invalid or expired reset token"})
    await api.services.db.execute(
        "UPDATE password_reset_tokens SET expires_at = :t",
        {"t": accounts.now().replace(year=2020)})
    r = await reset(api, token, "brand-new-pass")
    assert (r.status_code, r.json()) == (400, {"error": "Invalid or expired reset token"})
    assert await login_status(api, "rita@example.com", PASSWORD) == 200


async def test_new_password_is_validated_first(mailing: tuple[Api, Inbox]) -> None:
    api, inbox = mailing
    await register(api, "sam@example.com")
    await forgot(api, "sam@example.com")
    token = token_of(inbox.messages[0])
    r = await reset(api, token, "1234567")
    assert (r.status_code, r.json()) == (400, {"error": "Password should be at least 8 "
                                                        "characters"})
    r = await reset(api, token, "x" * 129)
    assert (r.status_code, r.json()) == (400, {"error": "Password should be at most 128 "
                                                        "characters"})
    r = await reset(api, "unknown", "1234567")  # length before the token, like register
    assert r.json() == {"error": "Password should be at least 8 characters"}
    # A refused password did not use the token up.
    assert (await reset(api, token, "12345678")).status_code == 204
    assert await login_status(api, "sam@example.com", "12345678") == 200


async def test_reset_body_shape(mailing: tuple[Api, Inbox]) -> None:
    api, _ = mailing
    r = await api.client.post(f"{AUTH}/reset-password", json={"token": "abc"})
    assert r.status_code == 422
    assert "missing field `new_password`" in r.json()["error"]
    r = await api.client.post(f"{AUTH}/forgot-password", json={})
    assert r.status_code == 422


async def test_smtp_credentials_from_the_url(database_url: str,
                                             smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    assert parse_smtp_url(f"smtp://mailer:s3cret%2Fpw@127.0.0.1:{port}").password == \
        "s3cret/pw"
    for secret, delivered in (("wrong", 0), ("s3cret%2Fpw", 1)):
        url = f"smtp://mailer:{secret}@127.0.0.1:{port}"
        app = create_app(settings_for(database_url, smtp_url=url), passwords=FAST_PASSWORDS)
        async for api in running_api(app):
            if secret == "wrong":
                await register(api, "tess@example.com")
                r = await api.client.post(f"{AUTH}/forgot-password",
                                          json={"email": "tess@example.com"})
                assert (r.status_code, r.json()) == (500, {"error": "Failed to send email"})
            else:
                await forgot(api, "tess@example.com")
        assert len(inbox.messages) == delivered


async def test_unreachable_mail_server(database_url: str) -> None:
    url = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    app = create_app(settings_for(database_url, smtp_url=url), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        await register(api, "uma@example.com")
        r = await api.client.post(f"{AUTH}/forgot-password", json={"email": "uma@example.com"})
        assert (r.status_code, r.json()) == (500, {"error": "Failed to send email"})
        r = await api.client.post(f"{AUTH}/forgot-password", json={"email": "x@example.com"})
        assert r.status_code == 204  # unknown: nothing to send, nothing fails


async def test_without_smtp_the_link_is_logged(api: Api, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    await register(api, "vera@example.com")
    with caplog.at_level(logging.INFO, logger="excentra.mail"):
        await forgot(api, "vera@example.com")
    [record] = [r for r in caplog.records if r.name == "excentra.mail"]
    link = record.__dict__["link"]
    [token] = LINK.findall(link)
    assert record.__dict__["to"] == "vera@example.com"
    assert (await reset(api, token, "logged-link-pw")).status_code == 204


async def test_smtp_url_forms() -> None:
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.tls, plain.username) == (
        "mail.example.com", 25, False, None)
    tls = parse_smtp_url("smtps://u:p@mail.example.com")
    assert (tls.port, tls.tls, tls.username, tls.password) == (465, True, "u", "p")
    assert parse_smtp_url("smtp://h:2525").port == 2525
    for bad in ("http://mail.example.com", "smtp://", "mail.example.com"):
        with pytest.raises(ValueError, match="SMTP_URL"):
            parse_smtp_url(bad)


async def test_forgot_and_reset_limits_by_ip(database_url: str) -> None:
    app = create_app(settings_for(database_url, rate_limits=DEFAULT_POLICIES),
                     passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        for route, limit, window, passed in (("forgot-password", 5, 3600, 204),
                                             ("reset-password", 5, 900, 400)):
            body = {"email": "w@example.com", "token": "t", "new_password": "new-password"}
            for _ in range(limit):
                r = await api.client.post(f"{AUTH}/{route}", json=body)
                assert r.status_code == passed
            r = await api.client.post(f"{AUTH}/{route}", json=body)
            assert r.status_code == 429
            assert r.json()["error"] == (f"rate limit exceeded, try again after: "
                                         f"{window // 60 - 1} mins")
            assert r.headers["x-ratelimit-limit"] == str(limit)
            assert r.headers["x-ratelimit-remaining"] == "0"
            assert window - 5 <= int(r.headers["retry-after"]) <= window
