"""``/api/v1/users/me``: the profile, and updates with the original's validation order."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from excentra.db import accounts
from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio

ME = "/api/v1/users/me"
PASSWORD = "password123"


def parse_ts(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text[:-1] + "+00:00")


async def test_get_me(api: Api) -> None:
    user_id, headers = await api.user("Nina@Example.com")
    r = await api.client.get(ME, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "username", "email", "role", "is_suspended", "created_at",
                         "updated_at"}
    assert {k: body[k] for k in ("id", "username", "email", "role", "is_suspended")} == {
        "id": user_id, "username": None, "email": "nina@example.com", "role": "user",
        "is_suspended": False}
    assert parse_ts(body["created_at"]) == parse_ts(body["updated_at"])


async def test_get_me_reports_admin_and_suspension(api: Api) -> None:
    user_id, headers = await api.user(role="admin")
    await accounts.set_suspended(api.services.db, user_id, True)
    body = (await api.client.get(ME, headers=headers)).json()
    assert (body["role"], body["is_suspended"]) == ("admin", True)


async def test_me_needs_a_valid_token(api: Api) -> None:
    r = await api.client.get(ME)
    assert (r.status_code, r.json()) == (401, {"error": "No authorization header"})
    r = await api.client.get(ME, headers={"Authorization": "Token abc"})
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Bearer token"})
    r = await api.client.get(ME, headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()) == (401, {"error": "User not logged in"})
    user_id, headers = await api.user()
    token = headers["Authorization"].removeprefix("Bearer ")
    for scheme in ("bearer", "BEARER", "BeArEr"):  # the scheme is case-insensitive
        r = await api.client.get(ME, headers={"Authorization": f"{scheme} {token}"})
        assert (r.status_code, r.json()["id"]) == (200, user_id)
    r = await api.client.get(ME, headers={"Authorization": f"Bearer{token}"})
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Bearer token"})
    r = await api.client.patch(ME, json={"username": "x_y_z"})
    assert (r.status_code, r.json()) == (401, {"error": "No authorization header"})


async def test_a_token_for_a_missing_user(api: Api) -> None:
    ghost = {"Authorization": f"Bearer {api.services.tokens.access(uuid.uuid4(), 'user')}"}
    r = await api.client.get(ME, headers=ghost)
    assert (r.status_code, r.json()) == (401, {"error": "Session invalid, please log in again"})
    r = await api.client.patch(ME, headers=ghost, json={"username": "ghost"})
    assert (r.status_code, r.json()) == (401, {"error": "Session invalid, please log in again"})
    r = await api.client.patch(ME, headers=ghost, json={
        "current_password": PASSWORD, "new_password": "another-one"})
    assert (r.status_code, r.json()) == (401, {"error": "Session invalid, please log in again"})


@pytest.mark.parametrize(("body", "message"), [
    ({}, "Request body cannot be empty"),
    ({"username": None, "current_password": None, "new_password": None},
     "Request body cannot be empty"),
    ({"current_password": PASSWORD}, "Provide current and new password"),
    ({"new_password": PASSWORD, "username": "valid_name"}, "Provide current and new password"),
    ({"current_password": "   ", "new_password": PASSWORD}, "Fields cannot be empty"),
    ({"current_password": PASSWORD, "new_password": ""}, "Fields cannot be empty"),
    ({"current_password": PASSWORD, "new_password": " 1234567 "},
     "password should be at least 8 characters"),
    ({"current_password": "short", "new_password": PASSWORD},
     "password should be at least 8 characters"),
    ({"current_password": PASSWORD, "new_password": "x" * 129},
     "Password should be at most 128 characters"),
    # Passwords are checked before the username (the original's order).
    ({"current_password": PASSWORD, "new_password": "short", "username": "!"},
     "password should be at least 8 characters"),
    ({"username": "   "}, "Fields cannot be empty"),
    ({"username": "ab"}, "Username should be min of 3 characters, no spaces, "
                         "alphanumeric + underscores only"),
    ({"username": "a b c"}, "Username should be min of 3 characters, no spaces, "
                            "alphanumeric + underscores only"),
    ({"username": "bad-name"}, "Username should be min of 3 characters, no spaces, "
                               "alphanumeric + underscores only"),
    ({"username": "a" * 51}, "Username should be at most 50 characters"),
    # ASCII only, as the schema's pattern says (the original took any Unicode letter)
    ({"username": "jos\u00e9"}, "Username should be min of 3 characters, no spaces, "
                                "alphanumeric + underscores only"),
    ({"username": "\u0430dmin"}, "Username should be min of 3 characters, no spaces, "
                                 "alphanumeric + underscores only"),  # Cyrillic а
])
async def test_update_validation(api: Api, body: dict[str, object], message: str) -> None:
    _, headers = await api.user()
    r = await api.client.patch(ME, headers=headers, json=body)
    assert (r.status_code, r.json()) == (400, {"error": message})


async def test_update_username_stores_the_value_as_sent(api: Api) -> None:
    _, headers = await api.user()
    before = (await api.client.get(ME, headers=headers)).json()
    r = await api.client.patch(ME, headers=headers, json={"username": " Zoe_99 "})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["username"] == " Zoe_99 "  # validated trimmed, stored untrimmed (original)
    assert parse_ts(body["updated_at"]) > parse_ts(before["updated_at"])
    assert {k: body[k] for k in ("id", "email", "created_at")} == {
        k: before[k] for k in ("id", "email", "created_at")}
    assert (await api.client.get(ME, headers=headers)).json() == body
    r = await api.client.patch(ME, headers=headers, json={"username": "a" * 50})
    assert (r.status_code, r.json()["username"]) == (200, "a" * 50)


async def test_username_taken(api: Api) -> None:
    _, first = await api.user()
    _, second = await api.user()
    assert (await api.client.patch(ME, headers=first, json={"username": "taken"})
            ).status_code == 200
    r = await api.client.patch(ME, headers=second, json={"username": "taken"})
    assert (r.status_code, r.json()) == (409, {"error": "Username already taken"})


async def test_change_password(api: Api) -> None:
    _, headers = await api.user("olga@example.com")
    r = await api.client.patch(ME, headers=headers, json={
        "current_password": "wrong-password", "new_password": "new-password-1"})
    assert (r.status_code, r.json()) == (401, {"error": "Current password is incorrect"})
    r = await api.client.patch(ME, headers=headers, json={
        "current_password": PASSWORD, "new_password": " new-password-1 ",
        "username": "olga"})
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "olga"
    login = "/api/v1/auth/login"
    r = await api.client.post(login, json={"email": "olga@example.com", "password": PASSWORD})
    assert r.status_code == 401
    r = await api.client.post(login, json={"email": "olga@example.com",
                                           "password": "new-password-1"})
    assert r.status_code == 401  # the untrimmed value is the password
    r = await api.client.post(login, json={"email": "olga@example.com",
                                           "password": " new-password-1 "})
    assert r.status_code == 200, r.text


async def test_wrong_current_password_changes_nothing(api: Api) -> None:
    _, headers = await api.user()
    r = await api.client.patch(ME, headers=headers, json={
        "current_password": "wrong-password", "new_password": "new-password-1",
        "username": "unchanged"})
    assert r.status_code == 401
    assert (await api.client.get(ME, headers=headers)).json()["username"] is None


async def test_suspended_user_reads_but_cannot_update(api: Api) -> None:
    user_id, headers = await api.user()
    await accounts.set_suspended(api.services.db, user_id, True)
    api.services.suspended.set(user_id, True)
    r = await api.client.patch(ME, headers=headers, json={"username": "frozen"})
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    r = await api.client.get(ME, headers=headers)
    assert r.status_code == 200
    assert r.json()["username"] is None


async def test_update_body_shape(api: Api) -> None:
    _, headers = await api.user()
    r = await api.client.patch(ME, headers=headers, json={"username": 5})
    assert r.status_code == 422
    r = await api.client.patch(ME, headers={**headers, "Content-Type": "application/json"},
                               content=b"not json")
    assert r.status_code == 400
    r = await api.client.patch(ME, headers=headers, content=b'{"username": "abc"}')
    assert r.status_code == 415
