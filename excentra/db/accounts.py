"""All SQL for accounts: users, refresh tokens and password-reset tokens.

These rows are written directly (no actor owns them). Timestamps are taken from Python
(``datetime.now(UTC)``), never from the database clock, so both dialects compare the same
kind of value (SQLite stores them as fixed-width text whose lexical order is time order).

Token rows store only the SHA-256 of the raw token. Every "use once" step is a single
conditional ``UPDATE ... WHERE used_at IS NULL RETURNING``: of two concurrent requests
presenting the same token, exactly one sees the row come back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from excentra.db.database import Database, Row
from excentra.db.reading import unfenced
from excentra.db.users import create_user

UserId = uuid.UUID | str
SYSTEM_ROLE = "system"
"""The role of the exchange's own accounts (the seeding market maker, the fee account):
they hold money but are not users: no login, not listed or counted as users."""

USER_TYPES: dict[str, Any] = {"id": uuid.UUID, "is_suspended": bool,
                              "created_at": datetime, "updated_at": datetime}
_USER_COLUMNS = "id, email, username, role, is_suspended, created_at, updated_at"
_TOKEN_TYPES: dict[str, Any] = {"id": uuid.UUID, "user_id": uuid.UUID,
                                "expires_at": datetime, "used_at": datetime}


def now() -> datetime:
    return datetime.now(UTC)


def normalize_email(email: str) -> str:
    """The stored form of an e-mail: uniqueness and login are case-insensitive."""
    return email.strip().lower()


def _id(user_id: UserId) -> uuid.UUID:
    return user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))


# -- users --------------------------------------------------------------------------------


@unfenced
async def add_user(db: Database, email: str, password_hash: str, role: str = "user") -> Row:
    """Insert a user and return its row.

    Raises:
        IntegrityError: the e-mail is registered already.
    """
    user_id = await create_user(db, email, password_hash, role)
    row = await user_by_id(db, user_id)
    assert row is not None, "a user just inserted must be readable"
    return row


@unfenced
async def user_by_id(db: Database, user_id: UserId) -> Row | None:
    """The user's public columns (no password hash), or ``None``."""
    return await db.fetch_one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id",  # noqa: S608
                              {"id": _id(user_id)}, types=USER_TYPES)


@unfenced
async def user_by_email(db: Database, email: str) -> Row | None:
    """The user's public columns plus ``password_hash``, for login and reset mails."""
    return await db.fetch_one(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email = :email",  # noqa: S608
        {"email": normalize_email(email)}, types=USER_TYPES)


@unfenced
async def password_hash_of(db: Database, user_id: UserId) -> str | None:
    value = await db.fetch_val("SELECT password_hash FROM users WHERE id = :id",
                               {"id": _id(user_id)}, as_type=str)
    return None if value is None else str(value)


@unfenced
async def update_profile(db: Database, user_id: UserId, *, username: str | None = None,
                         password_hash: str | None = None) -> Row | None:
    """Set the given fields (``None`` = keep), bump ``updated_at``; the new row or ``None``.

    Raises:
        IntegrityError: the username is taken.
    """
    sets = ["updated_at = :now"]
    values: dict[str, object] = {"id": _id(user_id), "now": now()}
    if username is not None:
        sets.append("username = :username")
        values["username"] = username
    if password_hash is not None:
        sets.append("password_hash = :password_hash")
        values["password_hash"] = password_hash
    return await db.fetch_one(
        f"UPDATE users SET {', '.join(sets)} WHERE id = :id "  # noqa: S608 (constant fragments)
        f"RETURNING {_USER_COLUMNS}", values, types=USER_TYPES)


@unfenced
async def set_role(db: Database, user_id: UserId, role: str) -> Row | None:
    """The updated user row, or ``None`` for an unknown id or a system account (the market
    maker, the fee account: not users, their role never changes)."""
    return await db.fetch_one(
        f"UPDATE users SET role = :role, updated_at = :now "  # noqa: S608
        f"WHERE id = :id AND role <> '{SYSTEM_ROLE}' RETURNING {_USER_COLUMNS}",
        {"id": _id(user_id), "role": role, "now": now()}, types=USER_TYPES)


@unfenced
async def set_role_by_email(db: Database, email: str, role: str) -> bool:
    """Whether a user with that e-mail exists (and now has ``role``)."""
    found = await db.fetch_val(
        "UPDATE users SET role = :role, updated_at = :now WHERE email = :email RETURNING id",
        {"email": normalize_email(email), "role": role, "now": now()})
    return found is not None


@unfenced
async def set_suspended(db: Database, user_id: UserId, suspended: bool | None) -> Row | None:
    """Set the flag, or toggle it when ``suspended`` is ``None`` (the original frontend
    sends no body). The updated row, or ``None`` for an unknown id or a system account.

    Refresh tokens are left alone: the caller revokes them (``expire_refresh_tokens``)
    together with updating the in-memory suspended set.
    """
    flag = "NOT is_suspended" if suspended is None else ":flag"
    values: dict[str, object] = {"id": _id(user_id), "now": now()}
    if suspended is not None:
        values["flag"] = suspended
    return await db.fetch_one(
        f"UPDATE users SET is_suspended = {flag}, updated_at = :now "  # noqa: S608
        f"WHERE id = :id AND role <> '{SYSTEM_ROLE}' RETURNING {_USER_COLUMNS}", values,
        types=USER_TYPES)


# -- refresh tokens -------------------------------------------------------------------------


@unfenced
async def add_refresh_token(db: Database, user_id: UserId, token_hash: str,
                            ttl: float) -> None:
    await db.execute(
        "INSERT INTO refresh_tokens (id, user_id, token_hash, expires_at, created_at) "
        "VALUES (:id, :user_id, :hash, :expires, :now)",
        {"id": uuid.uuid4(), "user_id": _id(user_id), "hash": token_hash,
         "expires": now() + timedelta(seconds=ttl), "now": now()})


@unfenced
async def refresh_token_by_hash(db: Database, token_hash: str) -> Row | None:
    """``id, user_id, expires_at, used_at`` of the token, or ``None``."""
    return await db.fetch_one(
        "SELECT id, user_id, expires_at, used_at FROM refresh_tokens "
        "WHERE token_hash = :hash", {"hash": token_hash}, types=_TOKEN_TYPES)


@unfenced
async def rotate_refresh_token(db: Database, token_id: uuid.UUID, user_id: UserId,
                               new_hash: str, ttl: float) -> bool:
    """Mark the old token used and store its successor, in one transaction.

    Returns:
        ``False`` if the old token had been used meanwhile (a concurrent refresh won):
        nothing is written then.
    """
    async with db.transaction():
        claimed = await db.fetch_val(
            "UPDATE refresh_tokens SET used_at = :now "
            "WHERE id = :id AND used_at IS NULL RETURNING id", {"id": token_id, "now": now()})
        if claimed is None:
            return False
        await add_refresh_token(db, user_id, new_hash, ttl)
    return True


@unfenced
async def delete_refresh_token(db: Database, token_id: uuid.UUID) -> None:
    await db.execute("DELETE FROM refresh_tokens WHERE id = :id", {"id": token_id})


@unfenced
async def expire_refresh_tokens(db: Database, user_id: UserId) -> None:
    """End every session of a user being suspended: its tokens expire now (they can never
    refresh again) but are kept while it stays suspended, so presenting one is answered
    ``Account suspended`` (403), not as an unknown token (``sweep_expired_tokens``)."""
    moment = now()
    await db.execute("UPDATE refresh_tokens SET expires_at = :now "
                     "WHERE user_id = :user_id AND expires_at > :now",
                     {"user_id": _id(user_id), "now": moment})


@unfenced
async def revoke_refresh_tokens(db: Database, user_id: UserId) -> None:
    """Delete all of the user's refresh tokens (every session must log in again)."""
    await db.execute("DELETE FROM refresh_tokens WHERE user_id = :user_id",
                     {"user_id": _id(user_id)})


@unfenced
async def sweep_expired_tokens(db: Database) -> None:
    """Delete expired refresh and password-reset tokens (housekeeping only: expired rows
    are refused anyway), except a suspended user's (``expire_refresh_tokens``)."""
    moment = {"now": now()}
    # A suspended user's expired tokens stay until the suspension ends: they say why.
    await db.execute("DELETE FROM refresh_tokens WHERE expires_at < :now AND user_id NOT IN "
                     "(SELECT id FROM users WHERE is_suspended = :yes)", {**moment, "yes": True})
    await db.execute("DELETE FROM password_reset_tokens WHERE expires_at < :now", moment)


# -- password-reset tokens ------------------------------------------------------------------


@unfenced
async def add_reset_token(db: Database, user_id: UserId, token_hash: str,
                          ttl: float) -> None:
    await db.execute(
        "INSERT INTO password_reset_tokens (id, user_id, token_hash, expires_at, created_at) "
        "VALUES (:id, :user_id, :hash, :expires, :now)",
        {"id": uuid.uuid4(), "user_id": _id(user_id), "hash": token_hash,
         "expires": now() + timedelta(seconds=ttl), "now": now()})


@unfenced
async def reset_token_valid(db: Database, token_hash: str) -> bool:
    """Whether the token exists, is unused and unexpired (a read; ``reset_password``
    decides atomically)."""
    found = await db.fetch_val(
        "SELECT id FROM password_reset_tokens "
        "WHERE token_hash = :hash AND used_at IS NULL AND expires_at > :now",
        {"hash": token_hash, "now": now()})
    return found is not None


@unfenced
async def reset_password(db: Database, token_hash: str, password_hash: str) -> bool:
    """Use the reset token once: set the password and revoke the user's refresh tokens,
    in one transaction.

    Returns:
        ``False`` (nothing written) if the token is unknown, used or expired.
    """
    moment = now()
    async with db.transaction():
        user_id = await db.fetch_val(
            "UPDATE password_reset_tokens SET used_at = :now WHERE token_hash = :hash "
            "AND used_at IS NULL AND expires_at > :now RETURNING user_id",
            {"hash": token_hash, "now": moment}, as_type=uuid.UUID)
        if user_id is None:
            return False
        await db.execute("UPDATE users SET password_hash = :hash, updated_at = :now "
                         "WHERE id = :id", {"hash": password_hash, "now": moment, "id": user_id})
        await revoke_refresh_tokens(db, user_id)
    return True


@unfenced
async def suspended_users(db: Database) -> set[str]:
    """The ids of every suspended user."""
    rows = await db.fetch_all("SELECT id FROM users WHERE is_suspended = :yes",
                              {"yes": True})
    return {str(r["id"]) for r in rows}


@unfenced
async def user_roles(db: Database) -> dict[str, str]:
    """Every user's role, by id (the in-memory role map's start; one row per user)."""
    rows = await db.fetch_all("SELECT id, role FROM users", types={"id": uuid.UUID})
    return {str(r["id"]): str(r["role"]) for r in rows}


@unfenced
async def role_of(db: Database, user_id: UserId) -> str | None:
    """The user's role, or ``None`` if there is no such user."""
    value = await db.fetch_val("SELECT role FROM users WHERE id = :id",
                               {"id": _id(user_id)}, as_type=str)
    return None if value is None else str(value)
