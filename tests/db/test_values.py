"""Pure tests (no database): URL resolution, value encoding/decoding, script splitting."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from excentra.db import (
    DEFAULT_URL,
    as_bool,
    as_datetime,
    as_decimal,
    as_uuid,
    decode_row,
    format_timestamp,
    from_db,
    resolve_url,
    to_db,
)
from excentra.db._sqlite import split_script
from excentra.db.url import dialect_of


@pytest.mark.parametrize("url", [None, "", "   "])
def test_no_url_means_embedded_sqlite_file(url: str | None) -> None:
    assert resolve_url(url) == DEFAULT_URL == "sqlite:///excentra.db"
    assert dialect_of(resolve_url(url)) == "sqlite"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/x.db", "sqlite:///data/x.db"),
        ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
        ("postgresql://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql://u@h/db"),
        ("postgresql+asyncpg://u@h/db?min_size=2", "postgresql://u@h/db?min_size=2"),
    ],
)
def test_resolve_url(url: str, expected: str) -> None:
    assert resolve_url(url) == expected


def test_dialect_follows_scheme() -> None:
    assert dialect_of(resolve_url("postgres://h/db")) == "postgresql"
    assert dialect_of(resolve_url("sqlite:///x.db")) == "sqlite"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://h/db",
        "postgresql+aiopg://h/db",
        "excentra.db",
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite://host/x.db",
        "sqlite:///x.db?cache=shared",
    ],
)
def test_resolve_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the messages are checked by eye
        resolve_url(url)


class _Colour(enum.StrEnum):
    RED = "red"


def test_to_db_sqlite_forms() -> None:
    stamp = datetime(2026, 4, 22, 12, 11, 12, 123456, tzinfo=timezone(timedelta(hours=2)))
    some_id = uuid.UUID("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
    assert to_db(Decimal("0.000000000000000001"), "sqlite") == "0.000000000000000001"
    assert to_db(Decimal("1E+3"), "sqlite") == "1000"
    assert to_db(Decimal("-1.50"), "sqlite") == "-1.50"
    assert to_db(some_id, "sqlite") == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert to_db(stamp, "sqlite") == "2026-04-22T10:11:12.123456Z"
    assert to_db(True, "sqlite") == 1
    assert to_db(False, "sqlite") == 0
    assert to_db(_Colour.RED, "sqlite") == "red"
    assert to_db(None, "sqlite") is None
    assert to_db(7, "sqlite") == 7


def test_to_db_postgresql_keeps_native_types() -> None:
    stamp = datetime(2026, 4, 22, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_db(Decimal("1.10"), "postgresql") == Decimal("1.10")
    assert to_db(True, "postgresql") is True
    assert to_db(stamp, "postgresql") == stamp
    assert to_db(stamp, "postgresql").tzinfo == UTC  # type: ignore[union-attr]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_to_db_refuses_floats_naive_times_and_non_finite(dialect: str) -> None:
    with pytest.raises(TypeError, match="float"):
        to_db(0.1, dialect)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naive"):
        to_db(datetime(2026, 1, 1), "sqlite")
    for bad in (Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError, match="non-finite"):
            to_db(bad, dialect)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no database encoding"):
        to_db(object(), dialect)  # type: ignore[arg-type]


def test_timestamp_text_is_fixed_width_so_lexical_order_is_time_order() -> None:
    base = datetime(2026, 4, 22, 10, 11, 12, tzinfo=UTC)
    stamps = [base + timedelta(microseconds=n) for n in (0, 1, 999_999, 1_000_000)]
    texts = [format_timestamp(s) for s in stamps]
    assert texts[0] == "2026-04-22T10:11:12.000000Z"
    assert sorted(texts) == texts
    assert {len(t) for t in texts} == {27}


def test_decoders() -> None:
    some_id = uuid.uuid4()
    assert as_decimal("123456789012345.123456789012345678") == Decimal(
        "123456789012345.123456789012345678"
    )
    assert as_decimal(5) == Decimal(5)
    assert as_uuid(str(some_id)) == some_id
    assert as_datetime("2026-04-22T10:11:12.123456Z") == datetime(
        2026, 4, 22, 10, 11, 12, 123456, tzinfo=UTC
    )
    # SQLite's CURRENT_TIMESTAMP form (naive, UTC by definition)
    assert as_datetime("2026-04-22 10:11:12").tzinfo == UTC
    assert as_bool(1) is True
    assert as_bool(0) is False
    assert from_db(None, Decimal) is None


def test_decoders_refuse_floats_and_garbage() -> None:
    with pytest.raises(TypeError):
        as_decimal(0.1)
    with pytest.raises(ValueError, match="not a decimal"):
        as_decimal("abc")
    with pytest.raises(TypeError):
        as_bool(2)
    with pytest.raises(TypeError):
        as_uuid(12)
    with pytest.raises(ValueError, match="no decoder"):
        from_db("x", float)  # type: ignore[arg-type]


def test_decode_row_names_columns_explicitly() -> None:
    row = {"amount": "1.50", "name": "1.50", "flag": 1}
    assert decode_row(row, {"amount": Decimal, "flag": bool}) == {
        "amount": Decimal("1.50"),
        "name": "1.50",
        "flag": True,
    }
    with pytest.raises(KeyError, match="amonut"):
        decode_row(row, {"amonut": Decimal})


def test_split_script_respects_quotes_comments_and_triggers() -> None:
    script = """
        -- leading comment; with a semicolon
        CREATE TABLE a (x TEXT DEFAULT 'a;b');  INSERT INTO a VALUES ('c;d');
        CREATE TRIGGER t AFTER INSERT ON a BEGIN
            INSERT INTO a VALUES ('e');
        END;
        /* block; comment */ SELECT 1
        -- trailing comment
    """
    statements = split_script(script)
    assert len(statements) == 4
    assert statements[0].endswith("DEFAULT 'a;b');")
    assert statements[1] == "INSERT INTO a VALUES ('c;d');"
    assert statements[2].startswith("CREATE TRIGGER")
    assert statements[2].endswith("END;")
    assert statements[3].endswith("SELECT 1\n        -- trailing comment")


def test_split_script_drops_trailing_comments_and_rejects_unterminated() -> None:
    assert split_script("SELECT 1;\n-- done\n\n") == ["SELECT 1;"]
    with pytest.raises(ValueError, match="incomplete"):
        split_script("SELECT 'unterminated;")
