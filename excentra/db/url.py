"""Database URLs: which backend a URL means, and the embedded default."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

Dialect = Literal["sqlite", "postgresql"]

DEFAULT_URL = "sqlite:///excentra.db"
"""The embedded default: a SQLite file in the working directory."""

_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}


def resolve_url(url: str | None) -> str:
    """Normalise a configured database URL.

    ``None`` or blank gives :data:`DEFAULT_URL`. ``sqlite:///relative/path`` and
    ``sqlite:////absolute/path`` name a SQLite file. ``postgresql://``, ``postgres://`` and
    ``postgresql+asyncpg://`` all become ``postgresql://``, which ``databases`` serves with
    asyncpg.

    Raises:
        ValueError: for any other scheme, an in-memory SQLite database, or a SQLite URL
            with a query string.
    """
    if url is None or not url.strip():
        return DEFAULT_URL
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    scheme = scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        return f"postgresql://{rest}"
    if scheme == "sqlite":
        _check_sqlite(url)
        return url
    raise ValueError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///FILE or postgresql://..."
    )


def dialect_of(url: str) -> Dialect:
    """The dialect of a URL already passed through :func:`resolve_url`."""
    return "postgresql" if url.startswith("postgresql://") else "sqlite"


def _check_sqlite(url: str) -> None:
    parts = urlsplit(url)
    path = parts.path.removeprefix("/")
    if parts.netloc or not path:
        raise ValueError(f"a SQLite URL is sqlite:///FILE (three slashes), got {url!r}")
    if path == ":memory:":
        # Every connection to ":memory:" is a separate, empty database, and the library
        # opens one connection per task: the schema would vanish between queries.
        raise ValueError("in-memory SQLite is not supported: use a (temporary) file")
    if parts.query:
        # databases would append the query string to the file name, not parse it.
        raise ValueError(f"SQLite URLs take no query options, got {url!r}")
