"""``/api/v1/auth``: register, login, refresh, logout, forgot/reset password (reference
§1.1 and §6, with API.md's differences: case-insensitive e-mail, enforced suspension, the
system user refused, reset-password validated and revoking sessions).

The refresh token lives in an HttpOnly cookie scoped to ``/api/v1/auth``; each refresh
rotates it, and presenting a used one revokes every session of its user (reuse
detection). The daily sweep of expired rows is :func:`sweep_refresh_tokens`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Literal, NoReturn, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.db import DatabaseError, IntegrityError
from excentra.db import accounts as db_accounts
from excentra.db.database import Database, Row
from excentra.http import fields as f
from excentra.http.auth import new_opaque_token, token_hash
from excentra.http.config import REFRESH_TOKEN_TTL, RESET_TOKEN_TTL
from excentra.http.errors import bad_request, conflict, forbidden, unauthorized
from excentra.http.mail import send_reset_mail
from excentra.http.openapi import operation, schema
from excentra.http.render import json, no_content
from excentra.http.routes.users import MAX_PASSWORD, MIN_PASSWORD
from excentra.http.services import Services

log = logging.getLogger("excentra.http.auth")

API = "/api/v1"
COOKIE = "refresh_token"
COOKIE_PATH = f"{API}/auth"
MAX_EMAIL = 255
"""The ``users.email`` column's width."""
SWEEP_INTERVAL = 24 * 3600.0
"""Seconds between sweeps of expired tokens (the original's daily sweeper)."""

INVALID_LOGIN = "Invalid email or password"
INVALID_EMAIL = "Invalid email address"
INVALID_REFRESH = "Invalid or expired refresh token, please log in again"
SHARE_TIMEOUT = 10.0
"""Seconds a refresh waits for a concurrent rotation of the same token to finish."""
SUSPENDED = "Account suspended"

_NOT_IN_EMAIL = ("@\\s\\u0000-\\u001f\\u007f-\\u009f"
                 "\\u00ad\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u206f\\ufeff")
"""The characters an address may not hold: ``@`` (but the one), whitespace, controls and
the invisible format characters (soft hyphen, zero-width, bidi controls, BOM) that would
let one address pass for another. ``\\ufeff`` is named because ECMA-262's ``\\s`` holds it
and Python's does not: with it the pattern reads alike in both."""
EMAIL_PATTERN = f"^[^{_NOT_IN_EMAIL}]+@[^.{_NOT_IN_EMAIL}]+(\\.[^.{_NOT_IN_EMAIL}]+)+$"
"""What :func:`valid_email` checks, as the schema shows it."""
_EMAIL = re.compile(EMAIL_PATTERN)
EMAIL = {"pattern": EMAIL_PATTERN, "maxLength": MAX_EMAIL}
PASSWORD = {"minLength": MIN_PASSWORD, "maxLength": MAX_PASSWORD}


def _credentials(name: str) -> f.Body:
    return f.Body(name, {"email": f.string(route_rules=EMAIL, bad_text=INVALID_EMAIL),
                         "password": f.string(route_rules=PASSWORD)},
                  required=("email", "password"))


REGISTER = _credentials("RegisterRequest")
LOGIN = _credentials("LoginRequest")
FORGOT = f.Body("ForgotPasswordRequest", {"email": f.string(MAX_EMAIL)}, required=("email",))
RESET = f.Body("ResetPasswordRequest", {"token": f.string(),
                                        "new_password": f.string(route_rules=PASSWORD)},
               required=("token", "new_password"))
TOKEN = schema("LoginResponse", {"type": "object", "required": ["access_token"],
                                 "properties": {"access_token": {"type": "string"}}})


# -- validation -------------------------------------------------------------------------


def valid_email(email: str) -> bool:
    """A syntax check, not RFC 5322: one ``@``, a local part, a dotted domain, none of
    the characters of ``_NOT_IN_EMAIL``, at most 255 characters: exactly the schema's
    ``EMAIL_PATTERN`` and ``maxLength`` — and the stored, lower-cased form fits too
    (lower-casing can lengthen: "İ" becomes two characters; the column holds 255)."""
    return (len(email) <= MAX_EMAIL and len(email.lower()) <= MAX_EMAIL
            and _EMAIL.fullmatch(email) is not None)


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"Password should be at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:  # see MAX_PASSWORD: argon2 on huge input is a DoS
        return f"Password should be at most {MAX_PASSWORD} characters"
    return None


def check_credentials(email: str, password: str) -> None:
    """Register/login validation: every failing field's message, joined by ``"; "``."""
    problems = [] if valid_email(email) else [INVALID_EMAIL]
    problem = password_problem(password)
    if problem is not None:
        problems.append(problem)
    if problems:
        raise bad_request("; ".join(problems))


# -- sessions -----------------------------------------------------------------------------


def _set_refresh_cookie(services: Services, response: Response, raw: str) -> None:
    # No Max-Age: a session cookie, like the original; the row's expiry is what counts.
    response.set_cookie(COOKIE, raw, path=COOKIE_PATH, httponly=True,
                        secure=services.settings.cookie_secure, samesite=_samesite(services))


def _samesite(services: Services) -> Literal["lax", "strict", "none"] | None:
    return cast(Literal["lax", "strict", "none"] | None, services.settings.cookie_samesite)


async def _new_session(services: Services, user_id: uuid.UUID, role: str,
                       status: int = 200) -> Response:
    raw, hashed = new_opaque_token()
    await db_accounts.add_refresh_token(services.db, user_id, hashed, REFRESH_TOKEN_TTL)
    response = json({"access_token": services.tokens.access(user_id, role)}, status)
    _set_refresh_cookie(services, response, raw)
    return response


async def _decoy_hash(services: Services) -> str:
    """A hash of a random secret: checking a password against it costs what a real check
    costs, so an unknown e-mail does not answer faster than a wrong password."""
    if services.decoy_hash is None:
        services.decoy_hash = await services.passwords.hash(secrets.token_hex(16))
    return services.decoy_hash


async def _authenticate(services: Services, email: str, password: str) -> Row:
    row = await db_accounts.user_by_email(services.db, email)
    if row is None or row["role"] == db_accounts.SYSTEM_ROLE or not row["password_hash"]:
        await services.passwords.verify(await _decoy_hash(services), password)
        raise unauthorized(INVALID_LOGIN)
    if not await services.passwords.verify(row["password_hash"], password):
        raise unauthorized(INVALID_LOGIN)
    return row


# -- endpoints ----------------------------------------------------------------------------


@operation("register_user", "Auth", "Create an account and log in", body=REGISTER,
           rate_limited=True, responses={201: TOKEN, 409: "Error"})
async def register(request: Request) -> Response:
    body = await REGISTER.read(request)
    services: Services = request.state.services
    services.limiter.check(request, "register")
    check_credentials(body["email"], body["password"])
    hashed = await services.passwords.hash(body["password"])
    try:
        row = await db_accounts.add_user(services.db, body["email"], hashed)
    except IntegrityError:
        raise conflict("Email already registered") from None
    return await _new_session(services, row["id"], row["role"], 201)


@operation("login_user", "Auth", "Log in: an access token and the refresh cookie",
           body=LOGIN, rate_limited=True, responses={200: TOKEN, 401: "Error", 403: "Error"})
async def login(request: Request) -> Response:
    body = await LOGIN.read(request)
    services: Services = request.state.services
    services.limiter.check(request, "login")
    check_credentials(body["email"], body["password"])
    row = await _authenticate(services, body["email"], body["password"])
    if row["is_suspended"]:  # only after the password matched: no probing for suspension
        raise forbidden(SUSPENDED)
    return await _new_session(services, row["id"], row["role"])


@operation("refresh_token", "Auth", "Rotate the refresh cookie; a new access token (a "
           "refresh repeated within REFRESH_GRACE_SECONDS of the rotation gets the same "
           "new cookie)", responses={200: TOKEN, 401: "Error", 403: "Error"})
async def refresh(request: Request) -> Response:
    services: Services = request.state.services
    raw_old = request.cookies.get(COOKIE)
    if not raw_old:
        raise unauthorized("No refresh token")
    old_hash = token_hash(raw_old)
    grace = services.refresh_grace
    shared = grace.joining(old_hash)
    if shared is not None:  # a rotation of this very token is running or just happened
        answer = await _shared_rotation(services, shared)
        if answer is not None:
            return answer
    # No await between ``joining`` and ``begin``: two refreshes cannot both miss the other.
    future = grace.begin(old_hash)
    try:
        raw, user = await _rotate(services, raw_old)
    except BaseException:
        grace.failed(old_hash, future)
        raise
    if future is not None:
        future.set_result(f"{raw} {user['id']} {user['role']}")
    response = json({"access_token": services.tokens.access(user["id"], user["role"])})
    _set_refresh_cookie(services, response, raw)
    return response


async def _rotate(services: Services, raw_old: str) -> tuple[str, Row]:
    """Check the presented token and rotate it: ``(successor, user row)``."""
    db = services.db
    token = await db_accounts.refresh_token_by_hash(db, token_hash(raw_old))
    if token is None:
        raise unauthorized(INVALID_REFRESH)
    user = await db_accounts.user_by_id(db, token["user_id"])
    if user is None:  # deleted meanwhile (its tokens cascade with it): a client error
        raise unauthorized(INVALID_REFRESH)
    # Before the token's own checks: suspending expired the user's tokens (kept while the
    # suspension lasts), and the contract's answer to a suspended user is 403.
    if user["is_suspended"]:
        raise forbidden(SUSPENDED)
    if token["used_at"] is not None:
        await _reuse_detected(db, token["user_id"])
    if token["expires_at"] <= db_accounts.now():
        await db_accounts.delete_refresh_token(db, token["id"])
        raise unauthorized(INVALID_REFRESH)
    raw, hashed = new_opaque_token()
    if not await db_accounts.rotate_refresh_token(db, token["id"], user["id"], hashed,
                                                  REFRESH_TOKEN_TTL):
        # Another process's refresh used it first: to this one that is the same event as
        # a replay of a used token, so it is treated as one.
        await _reuse_detected(db, token["user_id"])
    return raw, user


async def _shared_rotation(services: Services, shared: asyncio.Future[str]
                           ) -> Response | None:
    """The answer of a refresh that shares a rotation within its grace: the same
    successor, a fresh access token. ``None`` if there is nothing to share (the rotation
    failed, or its successor is no longer a live session: logged out, or rotated again —
    then the usual checks decide)."""
    try:
        successor, user_id, role = (await asyncio.wait_for(asyncio.shield(shared),
                                                           SHARE_TIMEOUT)).split(" ")
    except (asyncio.CancelledError, TimeoutError):
        return None
    token = await db_accounts.refresh_token_by_hash(services.db, token_hash(successor))
    if token is None or token["used_at"] is not None or services.suspended.contains(user_id):
        return None
    response = json({"access_token": services.tokens.access(user_id, role)})
    _set_refresh_cookie(services, response, successor)
    return response


async def _presented_token(request: Request, db: Database) -> Row:
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise unauthorized("No refresh token")
    token = await db_accounts.refresh_token_by_hash(db, token_hash(raw))
    if token is None:
        raise unauthorized(INVALID_REFRESH)
    return token


async def _reuse_detected(db: Database, user_id: uuid.UUID) -> NoReturn:
    log.warning("refresh token reused: all sessions revoked", extra={"user_id": str(user_id)})
    await db_accounts.revoke_refresh_tokens(db, user_id)
    raise unauthorized("Session invalidated, please log in again")


@operation("logout", "Auth", "End this session (the refresh cookie's)",
           responses={204: None, 401: "Error"})
async def logout(request: Request) -> Response:
    services: Services = request.state.services
    token = await _presented_token(request, services.db)
    await db_accounts.delete_refresh_token(services.db, token["id"])
    response = no_content()
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True,
                           secure=services.settings.cookie_secure, samesite=_samesite(services))
    return response


@operation("request_password_reset", "Auth", "Mail a password-reset link (always 204)",
           body=FORGOT, rate_limited=True, responses={204: None, 500: "Error"})
async def forgot_password(request: Request) -> Response:
    body = await FORGOT.read(request)
    services: Services = request.state.services
    services.limiter.check(request, "forgot_password")
    row = await db_accounts.user_by_email(services.db, body["email"])
    # The same 204 for unknown e-mails (no account enumeration); system users have no
    # password and must not get one this way.
    if row is not None and row["role"] != db_accounts.SYSTEM_ROLE:
        raw, hashed = new_opaque_token()
        await db_accounts.add_reset_token(services.db, row["id"], hashed, RESET_TOKEN_TTL)
        await send_reset_mail(services.settings, row["email"], raw)
    return no_content()


@operation("reset_password", "Auth", "Set a new password with a mailed reset token",
           body=RESET, rate_limited=True, responses={204: None})
async def reset_password(request: Request) -> Response:
    body = await RESET.read(request)
    services: Services = request.state.services
    services.limiter.check(request, "reset_password")
    problem = password_problem(body["new_password"])
    if problem is not None:
        raise bad_request(problem)
    hashed_token = token_hash(body["token"])
    # Cheap read first, so a wrong token costs no argon2 hash; the write re-checks.
    if not await db_accounts.reset_token_valid(services.db, hashed_token):
        raise bad_request("Invalid or expired reset token")
    password_hash = await services.passwords.hash(body["new_password"])
    if not await db_accounts.reset_password(services.db, hashed_token, password_hash):
        raise bad_request("Invalid or expired reset token")
    return no_content()


# -- housekeeping -------------------------------------------------------------------------


async def sweep_refresh_tokens(services: Services) -> Callable[[], Awaitable[None]]:
    """Startup step: delete expired tokens now and every 24 h; returns the stop function."""
    await _sweep_once(services.db)

    async def forever() -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            await _sweep_once(services.db)

    task = asyncio.create_task(forever(), name="excentra-token-sweep")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop


async def _sweep_once(db: Database) -> None:
    try:
        await db_accounts.sweep_expired_tokens(db)
    except DatabaseError as exc:  # housekeeping: retried at the next sweep
        log.warning("token sweep failed", extra={"error": str(exc)})


routes = [
    Route(f"{API}/auth/register", register, methods=["POST"]),
    Route(f"{API}/auth/login", login, methods=["POST"]),
    Route(f"{API}/auth/refresh", refresh, methods=["POST"]),
    Route(f"{API}/auth/logout", logout, methods=["POST"]),
    Route(f"{API}/auth/forgot-password", forgot_password, methods=["POST"]),
    Route(f"{API}/auth/reset-password", reset_password, methods=["POST"]),
]
