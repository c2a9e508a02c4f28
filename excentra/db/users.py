"""Account rows (no ledger state lives here: balances belong to the ledger actor)."""

from __future__ import annotations

import uuid

from excentra.db.database import Database
from excentra.db.reading import unfenced


@unfenced
async def create_user(db: Database, email: str, password_hash: str = "",
                      role: str = "user") -> uuid.UUID:
    """Insert a user (email lowercased) and return its id."""
    user_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO users (id, email, password_hash, role) "
        "VALUES (:id, :email, :password_hash, :role)",
        {"id": user_id, "email": email.strip().lower(), "password_hash": password_hash,
         "role": role})
    return user_id
