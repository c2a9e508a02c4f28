"""``/api/v1/users/me``: read and update your own account (reference §1.2)."""

from __future__ import annotations

import string
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.db import IntegrityError
from excentra.db.accounts import password_hash_of, update_profile, user_by_id
from excentra.db.database import Row
from excentra.http import fields as f
from excentra.http.auth import (
    SESSION_INVALID,
    USER_GONE,
    challenge,
    require_active,
    require_user,
)
from excentra.http.errors import bad_request, conflict
from excentra.http.openapi import operation, ref, schema
from excentra.http.render import json, ts
from excentra.http.services import Services

API = "/api/v1"
MIN_PASSWORD = 8
MAX_PASSWORD = 128
"""Longest password accepted anywhere: argon2 over megabytes of input is a cheap way to
burn the server's CPU, and no real password is that long."""
MIN_USERNAME = 3
MAX_USERNAME = 50
"""The ``users.username`` column's width."""
_USERNAME_CHARS = frozenset(string.ascii_letters + string.digits + "_")

_SPACE = "\\u0020\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
"""The whitespace ``str.strip()`` removes that the text rule lets through (the rest of
what it removes are control characters)."""
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
_EDGE = f"[^{_SPACE}{_CONTROL}]"
PASSWORD_RULES = {
    "pattern": f"^[{_SPACE}]*{_EDGE}[^{_CONTROL}]{{{MIN_PASSWORD - 2},}}{_EDGE}[{_SPACE}]*$",
    "maxLength": MAX_PASSWORD}
"""What :func:`check_update` asks of each password: at least ``MIN_PASSWORD`` characters
once trimmed of whitespace, at most ``MAX_PASSWORD`` as sent."""
USERNAME_RULES = {"pattern": f"^[{_SPACE}]*[A-Za-z0-9_]{{{MIN_USERNAME},}}[{_SPACE}]*$",
                  "maxLength": MAX_USERNAME}
"""What :func:`check_update` asks of a username: ``MIN_USERNAME`` or more ASCII letters,
digits or underscores once trimmed, at most ``MAX_USERNAME`` characters as sent."""

ROLE = schema("UserRole", {"type": "string", "enum": ["user", "admin", "system"]})
USER = schema("UserResponse", {
    "type": "object",
    "required": ["id", "email", "role", "is_suspended", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "email": {"type": "string"},
        "username": {"type": ["string", "null"]}, "role": ref(ROLE),
        "is_suspended": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"}}})

def _given(name: str) -> dict[str, Any]:
    """JSON Schema: ``name`` is present and not null (the route takes null as absent)."""
    return {"required": [name], "properties": {name: {"type": "string"}}}


UPDATE = f.Body("UpdateUserRequest", {
    "username": f.string(nullable=True, route_rules=USERNAME_RULES,
                         description="3 to 50 ASCII letters, digits or underscores (spaces "
                                     "around are ignored by the check, stored as sent)"),
    "current_password": f.string(nullable=True, route_rules=PASSWORD_RULES,
                                 description="At least 8 characters once trimmed"),
    "new_password": f.string(nullable=True, route_rules=PASSWORD_RULES,
                             description="At least 8 characters once trimmed, at most 128"),
}, extra={"anyOf": [_given(name) for name in ("username", "current_password",
                                               "new_password")],
          "allOf": [{"if": _given(a), "then": _given(b)}
                    for a, b in (("current_password", "new_password"),
                                 ("new_password", "current_password"))]})
"""At least one field not null (else 400 ``Request body cannot be empty``), and both
passwords or neither (else 400 ``Provide current and new password``)."""


def user_json(row: Row) -> dict[str, Any]:
    """A ``users`` row (``excentra.db.accounts``) as ``UserResponse``."""
    return {"id": str(row["id"]), "username": row["username"], "email": row["email"],
            "role": row["role"], "is_suspended": bool(row["is_suspended"]),
            "created_at": ts(row["created_at"]), "updated_at": ts(row["updated_at"])}


@operation("get_user", "Users", "Your account", access="user", responses={200: USER})
async def get_me(request: Request) -> Response:
    principal = require_user(request)
    services: Services = request.state.services
    row = await user_by_id(services.db, principal.user_id)
    services.roles.set(principal.user_id, None if row is None else row["role"])
    if row is None:
        raise challenge(SESSION_INVALID, "invalid_token", USER_GONE)
    return json(user_json(row))


@operation("update_user", "Users", "Change your username and/or password", access="user",
           body=UPDATE, responses={200: USER, 403: "Error", 409: "Error"})
async def update_me(request: Request) -> Response:
    principal = require_active(request)
    body = await UPDATE.read(request)
    username, current, new = body["username"], body["current_password"], body["new_password"]
    check_update(username, current, new)
    services: Services = request.state.services
    new_hash = None
    if new is not None:
        stored = await password_hash_of(services.db, principal.user_id)
        if stored is None:
            services.roles.set(principal.user_id, None)  # deleted: forget it everywhere
            raise challenge(SESSION_INVALID, "invalid_token", USER_GONE)
        if not await services.passwords.verify(stored, current or ""):
            # the token is fine: a challenge without an error code (every 401 carries one)
            raise challenge("Current password is incorrect")
        new_hash = await services.passwords.hash(new)  # the untrimmed value, as given
    try:
        row = await update_profile(services.db, principal.user_id, username=username,
                                   password_hash=new_hash)
    except IntegrityError:
        raise conflict("Username already taken") from None
    if row is None:
        services.roles.set(principal.user_id, None)
        raise challenge(SESSION_INVALID, "invalid_token", USER_GONE)
    return json(user_json(row))


def check_update(username: str | None, current: str | None, new: str | None) -> None:
    """The original's checks in its order; they look at trimmed values, but what is
    stored is the value as sent."""
    if username is None and current is None and new is None:
        raise bad_request("Request body cannot be empty")
    if (current is None) != (new is None):
        raise bad_request("Provide current and new password")
    if current is not None and new is not None:
        if not current.strip() or not new.strip():
            raise bad_request("Fields cannot be empty")
        if len(current.strip()) < MIN_PASSWORD or len(new.strip()) < MIN_PASSWORD:
            raise bad_request("password should be at least 8 characters")
        if len(current) > MAX_PASSWORD or len(new) > MAX_PASSWORD:
            raise bad_request(f"Password should be at most {MAX_PASSWORD} characters")
    if username is not None:
        trimmed = username.strip()
        if not trimmed:
            raise bad_request("Fields cannot be empty")
        # ASCII only (the original took any Unicode letter): no look-alike usernames
        if len(trimmed) < MIN_USERNAME or not all(c in _USERNAME_CHARS for c in trimmed):
            raise bad_request("Username should be min of 3 characters, no spaces, "
                              "alphanumeric + underscores only")
        if len(username) > MAX_USERNAME:
            raise bad_request(f"Username should be at most {MAX_USERNAME} characters")


routes = [
    Route(f"{API}/users/me", get_me, methods=["GET"]),
    Route(f"{API}/users/me", update_me, methods=["PATCH"]),
]
