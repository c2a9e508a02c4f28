"""Schemathesis against the served OpenAPI document, over real HTTP: for every operation,
generated requests (a bounded number) must never produce a 5xx, and every response must
match its documented status codes and schema.

The caller is an admin with funds, so protected and admin operations are reached beyond
the 401 wall. ``SCHEMATHESIS_EXAMPLES`` raises the bound for a deeper local run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from excentra.db import Database, migrate
from excentra.db.users import create_user
from excentra.http.app import create_app
from excentra.http.auth import Tokens
from tests.http.conftest import FAST_PASSWORDS, settings_for
from tests.live import live_server

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [
    checks.not_a_server_error, checks.status_code_conformance,
    checks.content_type_conformance, checks.response_schema_conformance,
    checks.response_headers_conformance,
]
"""What the contract promises: no 5xx, and every response (status, content type, body,
headers) as documented. Not ``positive_data_acceptance``: a request can fit the schema and
still be refused on meaning (an empty asset symbol, an off-tick price) with a documented
4xx."""


async def _admin(url: str) -> str:
    db = Database(url)
    await db.connect()
    try:
        await migrate(db)
        return str(await create_user(db, "fuzz-admin@example.com", role="admin"))
    finally:
        await db.disconnect()


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:
    config = settings_for(database_url)
    admin_id = asyncio.run(_admin(database_url))
    token = Tokens(config.jwt_secret).access(admin_id, "admin")
    headers = {"Authorization": f"Bearer {token}"}
    with live_server(create_app(config, passwords=FAST_PASSWORDS)) as (base, _services):
        for asset, amount in (("USDT", "1000"), ("BTC", "0.05")):
            r = httpx.post(f"{base}/api/v1/balances/deposit", headers=headers,
                           json={"asset": asset, "amount": amount})
            assert r.status_code == 200, r.text
            assert Decimal(r.json()["available"]) == Decimal(amount)
        yield schemathesis.openapi.from_url(f"{base}/api-docs/openapi.json"), headers


def test_every_operation_conforms(
        served: tuple[schemathesis.BaseSchema, dict[str, str]]) -> None:
    # Driven through schemathesis' Python API rather than its pytest plugin (which reaches
    # into pytest internals that pytest 9 removed).
    schema, headers = served
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 30, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # every operation is reported
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
