"""Who is asking: access tokens (HS256 JWT with the original's claims), opaque refresh
tokens (stored as SHA-256), argon2id passwords (hashed off the event loop), and the
checks routes call (``require_user``, ``require_admin``, ``require_active``).

The token says who the caller is; what the caller may do follows the user's *current*
role (``Services.roles``, in memory, see ``UserRoles``), as suspension follows the
current flag: a demoted admin's token is a user's token at once, a token for a user that
no longer exists is refused (401). A promotion waits for the next token (login or
refresh): only the demotion matters to security, and an access token lives 15 minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import Request

from excentra.actors.watermarks import EVERYTHING, READER
from excentra.db.accounts import role_of
from excentra.http.config import ACCESS_TOKEN_TTL
from excentra.http.errors import ApiError, forbidden, unauthorized

LEEWAY = 60
"""Seconds of clock skew accepted on ``exp`` (the original's library default)."""
SESSION_INVALID = "Session invalid, please log in again"
"""A valid token whose user no longer exists."""
USER_GONE = "The token's user no longer exists"
TOKEN_EXPIRED = "The access token expired"  # noqa: S105 (a message, not a secret)
TOKEN_INVALID = "The access token is malformed, wrongly signed or lacks a claim"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: the token's user and, once checked against the current
    role (``UserRoles.current``), the role it acts with."""

    user_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Tokens:
    """Issues and checks access tokens.

    Checking one with pyjwt (base64, JSON, key preparation, HMAC) was the largest single
    cost of an authenticated request (bench/RESULTS.md, HTTP). A client sends the same
    token until it expires, so tokens that verified are remembered with their ``exp``: a
    repeat is a dict lookup and the same expiry rule. Keyed by the whole token, signature
    included, so only a byte-identical token hits; the claims of a token cannot change.
    Suspension, revocation and the current role are not in the token and are checked per
    request (``require_active``, ``require_user``).

    ``exp`` must be a JSON number: pyjwt also takes a string of digits (``"9999999999"``),
    which is refused here. A non-integer number is a valid NumericDate (RFC 7519) and is
    accepted, as pyjwt does.
    """

    CACHE_SIZE = 10_000
    """Verified tokens remembered; past this the oldest is forgotten (verified again)."""

    def __init__(self, secret: str, ttl: int = ACCESS_TOKEN_TTL) -> None:
        self._secret = secret
        self.ttl = ttl
        self._verified: dict[str, tuple[Principal, int]] = {}
        self.issued: list[Callable[[str, str], None]] = []
        """Told ``(user_id, role)`` of every token issued (the role map learns new users
        and the role just read from the database at login and refresh)."""

    def access(self, user_id: uuid.UUID | str, role: str) -> str:
        """A token for the user; ``role`` must be its role as just read from the database
        (the listeners of ``issued`` record it as the current one)."""
        for listener in self.issued:
            listener(str(user_id), role)
        claims = {"user_id": str(user_id), "role": role, "exp": int(time.time()) + self.ttl}
        return jwt.encode(claims, self._secret, algorithm="HS256", headers={"typ": "JWT"})

    def problem(self, token: str) -> str:
        """Why ``decode`` refused ``token``, for the 401's ``WWW-Authenticate``."""
        try:
            jwt.decode(token, self._secret, algorithms=["HS256"], leeway=LEEWAY)
        except jwt.ExpiredSignatureError:
            return TOKEN_EXPIRED
        except jwt.PyJWTError:
            pass
        return TOKEN_INVALID

    def decode(self, token: str) -> Principal | None:
        known = self._verified.get(token)
        if known is not None:
            principal, exp = known
            if exp > time.time() - LEEWAY:  # pyjwt's rule: expired once exp <= now - leeway
                return principal
            del self._verified[token]
            return None
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], leeway=LEEWAY,
                                options={"require": ["exp", "user_id", "role"]})
            if not _numeric_date(claims["exp"]):
                return None
            principal = Principal(str(uuid.UUID(str(claims["user_id"]))), str(claims["role"]))
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        if len(self._verified) >= self.CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, int(claims["exp"]))
        return principal


def _numeric_date(value: Any) -> bool:
    """A JSON number (not a string, not a boolean), finite."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def new_opaque_token() -> tuple[str, str]:
    """A fresh refresh/reset token: (the raw 128-hex-char value, its SHA-256 hex)."""
    raw = secrets.token_hex(64)
    return raw, token_hash(raw)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class Passwords:
    """argon2id with argon2-cffi's defaults; both operations run in a worker thread."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        if not stored:  # the system user: no password can match (401, never 500)
            return False
        return await asyncio.to_thread(self._check, stored, password)

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False


def challenge(message: str, error: str | None = None, description: str = "") -> ApiError:
    """A 401 with the original's ``message`` and RFC 6750's ``WWW-Authenticate``: no error
    code when no bearer token was offered (§3.1), else ``error`` and why."""
    value = "Bearer" if error is None else (f'Bearer error="{error}", '
                                            f'error_description="{description}"')
    return unauthorized(message, {"WWW-Authenticate": value})


def bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise challenge("No authorization header")
    if not header.isascii() or not header.isprintable():
        raise challenge("Invalid Header value", "invalid_request",
                        "The Authorization header must be printable ASCII")
    scheme, space, token = header.partition(" ")
    if scheme.lower() != "bearer":  # schemes are case-insensitive (RFC 9110)
        raise challenge("Invalid Bearer token")  # another scheme: no bearer token offered
    if not space:
        raise challenge("Invalid Bearer token", "invalid_request", "No token after Bearer")
    return token


def _claimed(request: Request) -> Principal:
    """The token's claims (not yet checked against the current role); 401 otherwise."""
    tokens: Tokens = request.state.services.tokens
    token = bearer(request)
    claimed = tokens.decode(token)
    if claimed is None:
        raise challenge("User not logged in", "invalid_token", tokens.problem(token))
    return claimed


def require_user(request: Request) -> Principal:
    """The caller of a ``user`` route, with its current role (``UserRoles.current``); 401
    with the original's messages otherwise, and for a user that no longer exists."""
    principal: Principal | None = request.state.services.roles.current(_claimed(request))
    if principal is None:
        raise challenge(SESSION_INVALID, "invalid_token", USER_GONE)
    # Read-your-writes (actors.watermarks): a user's queries see their own last write,
    # an admin's everything acknowledged.
    READER.set(EVERYTHING if principal.is_admin else principal.user_id)
    return principal


def require_admin(request: Request) -> Principal:
    principal = require_user(request)
    if not principal.is_admin:
        raise forbidden("You do not have permission to perform this action.")
    return principal


async def require_admin_now(request: Request) -> Principal:
    """``require_admin`` with the caller's role read from the database first (and the
    role map corrected with it): for the ``/admin`` routes, which are rare, so that a
    demotion or deletion made by another process (``excentra users promote``, SQL) counts
    at once there, and from then on everywhere."""
    services = request.state.services
    claimed = _claimed(request)
    services.roles.set(claimed.user_id, await role_of(services.db, claimed.user_id))
    return require_admin(request)


def require_active(request: Request) -> Principal:
    """A caller allowed to change state: logged in and not suspended (403 otherwise)."""
    principal = require_user(request)
    if request.state.services.suspended.contains(principal.user_id):
        raise forbidden("Account suspended")
    return principal


def require_active_admin(request: Request) -> Principal:
    """An admin allowed to change state: a suspended admin gets 403 (API.md)."""
    principal = require_admin(request)
    if request.state.services.suspended.contains(principal.user_id):
        raise forbidden("Account suspended")
    return principal
