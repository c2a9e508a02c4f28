"""Account commands: ``excentra admin create`` and ``excentra users promote``.

The first admin cannot come from the API (only an admin can grant roles), so it comes
from here. Both commands open the database (``--database-url``, else ``DATABASE_URL``,
else the embedded SQLite file), apply pending migrations, and print one line.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from excentra.db import Database, IntegrityError, migrate
from excentra.db import accounts as db_accounts
from excentra.http.auth import Passwords
from excentra.http.routes.auth import password_problem, valid_email


def admin_main(argv: list[str]) -> None:
    """``excentra admin create --email E --password P [--database-url URL]``.

    An existing e-mail is refused (not silently promoted with a new password): use
    ``excentra users promote`` for that.
    """
    parser = argparse.ArgumentParser(prog="excentra admin")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create an admin account")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    _database_option(create)
    args = parser.parse_args(argv)
    if not valid_email(args.email):
        parser.error(f"invalid email address: {args.email!r}")
    problem = password_problem(args.password)
    if problem is not None:
        parser.error(problem)
    print(asyncio.run(_create_admin(args.database_url, args.email, args.password)))


def users_main(argv: list[str]) -> None:
    """``excentra users promote --email E [--role admin|user] [--database-url URL]``."""
    parser = argparse.ArgumentParser(prog="excentra users")
    commands = parser.add_subparsers(dest="command", required=True)
    promote = commands.add_parser("promote", help="give an existing user a role")
    promote.add_argument("--email", required=True)
    promote.add_argument("--role", choices=("admin", "user"), default="admin")
    _database_option(promote)
    args = parser.parse_args(argv)
    print(asyncio.run(_promote(args.database_url, args.email, args.role)))


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""),
                        help="default: $DATABASE_URL, else the embedded SQLite file")


async def _create_admin(url: str, email: str, password: str) -> str:
    hashed = await Passwords().hash(password)
    async with Database(url or None) as db:
        await migrate(db)
        try:
            row = await db_accounts.add_user(db, email, hashed, role="admin")
        except IntegrityError:
            raise SystemExit(f"a user with email {db_accounts.normalize_email(email)} "
                             "exists already; to make it an admin use: excentra users "
                             f"promote --email {email}") from None
    return f"created admin {row['email']} ({row['id']})"


async def _promote(url: str, email: str, role: str) -> str:
    async with Database(url or None) as db:
        await migrate(db)
        user = await db_accounts.user_by_email(db, email)
        if user is not None and user["role"] == "system":  # the market maker and fee account
            raise SystemExit(f"{user['email']} is a system account; its role cannot change")
        if user is None or not await db_accounts.set_role_by_email(db, email, role):
            raise SystemExit(f"no user with email {db_accounts.normalize_email(email)}")
    return f"{db_accounts.normalize_email(email)} is now {role}"
