"""Finding migration files and choosing each version's file for a dialect.

Naming (see ``migrations/README.md``): ``NNNN_name.sql`` is valid on both dialects;
``NNNN_name.postgresql.sql`` + ``NNNN_name.sqlite.sql`` (always both) are the per-dialect
variants of one version. The checksum is the SHA-256 of the bytes of the file used.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from excentra.db.url import Dialect

MIGRATIONS_DIR_ENV = "EXCENTRA_MIGRATIONS_DIR"

_NAME = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<dialect>postgresql|sqlite))?\.sql$"
)


class MigrationError(Exception):
    """The migrations on disk and the ones recorded in the database disagree, or one failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One version's SQL for one dialect."""

    version: int
    name: str
    path: Path
    sql: str
    checksum: str


def default_migrations_dir() -> Path:
    """``$EXCENTRA_MIGRATIONS_DIR`` if set, else the repository's top-level ``migrations/``.

    The SQL files live only at the top level of the repository (next to the package), which
    an editable install or a checkout finds here; a deployment from a wheel sets the
    environment variable to wherever it put the files.
    """
    configured = os.environ.get(MIGRATIONS_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "migrations"


def load_migrations(directory: Path, dialect: Dialect) -> list[Migration]:
    """All migrations in ``directory`` for ``dialect``, in version order.

    Raises:
        MigrationError: if the directory is missing, a ``.sql`` file is misnamed, or a
            version's files do not form one shared file or one complete dialect pair.
    """
    if not directory.is_dir():
        raise MigrationError(f"migrations directory not found: {directory}")
    by_version: dict[int, list[tuple[Path, str, str | None]]] = defaultdict(list)
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: not NNNN_name.sql / NNNN_name.<dialect>.sql")
        by_version[int(match["version"])].append((path, match["name"], match["dialect"]))
    return [_choose(v, files, dialect) for v, files in sorted(by_version.items())]


def _choose(version: int, files: list[tuple[Path, str, str | None]], dialect: Dialect) -> Migration:
    names = sorted(path.name for path, _, _ in files)
    if len({name for _, name, _ in files}) != 1:
        raise MigrationError(f"version {version:04d} has differently named files: {names}")
    variants = {variant: path for path, _, variant in files}
    shared = set(variants) == {None} and len(files) == 1
    paired = set(variants) == {"postgresql", "sqlite"} and len(files) == 2
    if not (shared or paired):
        raise MigrationError(
            f"version {version:04d} needs one NNNN_name.sql or both .postgresql.sql and "
            f".sqlite.sql files, found {names}"
        )
    path = variants[None] if shared else variants[dialect]
    data = path.read_bytes()
    return Migration(
        version=version,
        name=files[0][1],
        path=path,
        sql=data.decode("utf-8"),
        checksum=hashlib.sha256(data).hexdigest(),
    )
