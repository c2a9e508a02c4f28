"""``/api/v1/balances`` over HTTP: reads, demo deposits (caps), off-chain withdrawals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio

BAL = "/api/v1/balances"


async def test_new_user_has_no_rows_and_synthetic_zero(api: Api) -> None:
    _, user = await api.user()
    r = await api.client.get(BAL, headers=user)
    assert (r.status_code, r.json()) == (200, [])
    r = await api.client.get(f"{BAL}/ eth ", headers=user)
    assert (r.status_code, r.json()) == (200, {"asset": "ETH", "available": "0", "held": "0"})
    r = await api.client.get(f"{BAL}/DOGE", headers=user)
    assert (r.status_code, r.json()) == (422, {"error": "DOGE is not supported"})


async def test_deposit_and_withdraw(api: Api) -> None:
    _, user = await api.user()
    r = await api.client.post(f"{BAL}/deposit", headers=user,
                              json={"asset": "usdt", "amount": "1000"})
    assert r.status_code == 200, r.text
    assert r.json()["asset"] == "USDT"
    assert (Decimal(r.json()["available"]), Decimal(r.json()["held"])) == (1000, 0)
    r = await api.client.post(f"{BAL}/deposit", headers=user,
                              json={"asset": "USDT", "amount": 250.5})
    assert Decimal(r.json()["available"]) == Decimal("1250.5")
    r = await api.client.post(f"{BAL}/withdraw", headers=user,
                              json={"asset": "USDT", "amount": "0.5"})
    assert r.status_code == 200, r.text
    assert Decimal(r.json()["available"]) == 1250
    for zero in ("0", "-0", "0.00"):  # as a deposit of 0 (the original answered 200, no-op)
        r = await api.client.post(f"{BAL}/withdraw", headers=user,
                                  json={"asset": "USDT", "amount": zero})
        assert (r.status_code, r.json()) == (400, {"error": "Amount must be greater than zero"})
    r = await api.client.post(f"{BAL}/withdraw", headers=user,
                              json={"asset": "USDT", "amount": "1250.000001"})
    assert (r.status_code, r.json()) == (422, {"error": "Insufficient balance"})
    r = await api.client.get(f"{BAL}/USDT", headers=user)
    assert Decimal(r.json()["available"]) == 1250
    audit = await api.services.exchange.audit_ledger()
    assert isinstance(audit, dict)


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("deposit", {"asset": "USDT", "amount": "0"}, 400, "Amount must be greater than zero"),
    ("deposit", {"asset": "USDT", "amount": "-1"}, 400, "Amount must be greater than zero"),
    ("deposit", {"asset": "usdt", "amount": "1000.01"}, 400, "Maximum deposit for USDT is 1000"),
    ("deposit", {"asset": "BTC", "amount": "0.06"}, 400, "Maximum deposit for BTC is 0.05"),
    ("deposit", {"asset": "ETH", "amount": "0.51"}, 400, "Maximum deposit for ETH is 0.5"),
    ("deposit", {"asset": "SOL", "amount": "6"}, 400, "Maximum deposit for SOL is 5"),
    ("deposit", {"asset": "DOGE", "amount": "1"}, 422, "DOGE is not supported"),
    ("deposit", {"asset": "USDT", "amount": "1.0000001"}, 422,
     "amount has more decimal places than USDT allows (6 decimals)"),
    ("withdraw", {"asset": "USDT", "amount": "-1"}, 400, "Amount cannot be less than Zero"),
    ("withdraw", {"asset": "DOGE", "amount": "1"}, 422, "DOGE is not supported"),
    ("withdraw", {"asset": "BTC", "amount": "1"}, 422, "Insufficient balance"),
])
async def test_transfer_errors(api: Api, path: str, body: dict[str, str], status: int,
                               message: str) -> None:
    _, user = await api.user()
    r = await api.client.post(f"{BAL}/{path}", headers=user, json=body)
    assert (r.status_code, r.json()) == (status, {"error": message})
    assert (await api.client.get(BAL, headers=user)).json() == []


async def test_idempotency_key_credits_once(api: Api) -> None:
    _, user = await api.user()
    headers = {**user, "Idempotency-Key": "dep-1"}
    for _ in range(3):
        r = await api.client.post(f"{BAL}/deposit", headers=headers,
                                  json={"asset": "BTC", "amount": "0.01"})
        assert r.status_code == 200, r.text
    r = await api.client.get(f"{BAL}/BTC", headers=user)
    assert Decimal(r.json()["available"]) == Decimal("0.01")


async def test_balances_need_a_token(api: Api) -> None:
    for method, path in (("GET", BAL), ("GET", f"{BAL}/BTC"), ("POST", f"{BAL}/deposit"),
                         ("POST", f"{BAL}/withdraw")):
        r = await api.client.request(method, path)
        assert (r.status_code, r.json()) == (401, {"error": "No authorization header"})
