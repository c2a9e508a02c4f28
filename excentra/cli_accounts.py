"""Account commands: ``excentra admin create`` and ``excentra users promote``.

The first admin cannot come from the API (only an admin can grant roles), so it comes
from here. Both commands open the database (``--database-url``, else ``DATABASE_URL``,
else the embedded SQLite file), apply pending migrations, and print one line for people
(or one JSON object with ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from excentra.db import Database, IntegrityError, migrate, resolve_url
from excentra.db import accounts as db_accounts
from excentra.http.auth import Passwords
from excentra.http.routes.auth import password_problem, valid_email

ADMIN_EXAMPLES = """examples:
  excentra admin create --email you@example.com
      asks for the password twice (in a terminal)
  printf '%s\\n' "$ADMIN_PASSWORD" | excentra admin create --email you@example.com --password-stdin
      reads it from standard input (scripts, containers)
  excentra admin create --email you@example.com --database-url postgresql://excentra@db/excentra

An e-mail that exists already is refused; to make that user an admin:
  excentra users promote --email you@example.com
"""

USERS_EXAMPLES = """examples:
  excentra users promote --email rose@example.com               # make an existing user admin
  excentra users promote --email rose@example.com --role user   # take the admin role away

A promotion counts at the user's next login or token refresh; a demotion at once.
"""

HISTORY_WARNING = ("warning: a password given with --password stays in your shell history "
                   "and is visible to other users in the process list; prefer the prompt "
                   "or --password-stdin")


def admin_main(argv: list[str]) -> None:
    """``excentra admin create --email E [--password-stdin | --password P]``."""
    parser = argparse.ArgumentParser(
        prog="excentra admin", description="Manage admin accounts.", epilog=ADMIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    create = commands.add_parser(
        "create", help="create an admin account", epilog=ADMIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create a new account with the admin role (migrating the database\n"
                    "first if needed). The password comes from a prompt, standard input\n"
                    "or --password.")
    create.add_argument("--email", required=True, help="the admin's e-mail (their login)")
    source = create.add_mutually_exclusive_group()
    source.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")
    source.add_argument("--password", help="the password itself (lands in shell history)")
    _common_options(create)
    args = parser.parse_args(argv)
    if not valid_email(args.email):
        parser.error(f"invalid email address: {args.email!r}")
    password = _password(create, args)
    problem = password_problem(password)
    if problem is not None:
        create.error(problem)
    user_id, email, where = asyncio.run(_create_admin(args.database_url, args.email,
                                                      password))
    _answer(args.json, {"id": user_id, "email": email, "role": "admin"},
            f"Created admin {email} (id {user_id}) in {where}")


def users_main(argv: list[str]) -> None:
    """``excentra users promote --email E [--role admin|user]``."""
    parser = argparse.ArgumentParser(
        prog="excentra users", description="Change existing users' roles.",
        epilog=USERS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    promote = commands.add_parser(
        "promote", help="give an existing user a role", epilog=USERS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Give an existing (registered) user the admin role, or take it away\n"
                    "with --role user. System accounts keep their role.")
    promote.add_argument("--email", required=True, help="the user's e-mail")
    promote.add_argument("--role", choices=("admin", "user"), default="admin",
                         help="the new role (default admin)")
    _common_options(promote)
    args = parser.parse_args(argv)
    email = asyncio.run(_promote(args.database_url, args.email, args.role))
    _answer(args.json, {"email": email, "role": args.role}, f"{email} is now {args.role}")


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""),
                        help="default: $DATABASE_URL, else the embedded SQLite file "
                             "excentra.db in the current directory")
    parser.add_argument("--json", action="store_true",
                        help="print the result as one JSON object (for scripts)")


def _password(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    if args.password is not None:
        print(HISTORY_WARNING, file=sys.stderr)
        return str(args.password)
    if args.password_stdin:
        return _first_line(sys.stdin)
    if not sys.stdin.isatty():
        parser.error("no password: pipe it in with --password-stdin, or run the command "
                     "in a terminal to be asked for it")
    first = getpass.getpass("Password for the new admin: ")
    if first != getpass.getpass("Repeat the password: "):
        parser.error("the two passwords differ; nothing was created")
    return first


def _first_line(stream: TextIO) -> str:
    return stream.readline().removesuffix("\n").removesuffix("\r")


def _answer(as_json: bool, fields: dict[str, str], sentence: str) -> None:
    print(json.dumps(fields) if as_json else sentence)


async def _create_admin(url: str, email: str, password: str) -> tuple[str, str, str]:
    """The new admin's id, normalised e-mail, and where the database is."""
    hashed = await Passwords().hash(password)
    async with Database(url or None) as db:
        await migrate(db)
        try:
            row = await db_accounts.add_user(db, email, hashed, role="admin")
        except IntegrityError:
            raise SystemExit(f"a user with email {db_accounts.normalize_email(email)} "
                             "exists already; to make it an admin use: excentra users "
                             f"promote --email {email}") from None
        return str(row["id"]), str(row["email"]), database_location(db.url)


async def _promote(url: str, email: str, role: str) -> str:
    async with Database(url or None) as db:
        await migrate(db)
        user = await db_accounts.user_by_email(db, email)
        if user is not None and user["role"] == "system":  # the market maker and fee account
            raise SystemExit(f"{user['email']} is a system account; its role cannot change")
        if user is None or not await db_accounts.set_role_by_email(db, email, role):
            raise SystemExit(f"no user with email {db_accounts.normalize_email(email)}")
    return db_accounts.normalize_email(email)


async def has_admin(db: Database) -> bool:
    """Whether any account has the admin role (the server's first-start hint)."""
    return await db.fetch_val("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1") is not None


def database_location(url: str) -> str:
    """Where a database is, for people: a SQLite file's absolute path (relative URLs are
    relative to the working directory), a PostgreSQL URL without its password."""
    resolved = resolve_url(url or None)
    if resolved.startswith("sqlite:"):
        return str(Path(urlsplit(resolved).path.removeprefix("/")).resolve())
    parts = urlsplit(resolved)
    if parts.password is None:
        return resolved
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}"))


def admin_hint(url: str) -> str:
    """The exact command that creates the first admin in the database at ``url``."""
    command = "excentra admin create --email you@example.com"
    resolved = resolve_url(url or None)
    if resolved.startswith("sqlite:"):
        return f"{command} --database-url sqlite:///{database_location(resolved)}"
    if urlsplit(resolved).password is not None:
        return f'{command} --database-url "$DATABASE_URL"'  # keep the password out of logs
    return f"{command} --database-url {resolved}"
