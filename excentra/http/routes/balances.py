"""``/api/v1/balances``: read balances, deposit, withdraw (reference §1.3, API.md)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.actors.bridge import Rejected
from excentra.db.orders import balances_of
from excentra.engine import RejectCode
from excentra.engine.precision import plain
from excentra.http import fields as f
from excentra.http.auth import Principal, require_active, require_user
from excentra.http.config import Settings
from excentra.http.errors import bad_request, rejection, unprocessable
from excentra.http.openapi import Reply, array_of, operation, schema
from excentra.http.render import dec, json
from excentra.http.services import Services
from excentra.http.symbols import ASSET_PATTERN, asset_code
from excentra.http.validate import check_places

API = "/api/v1"


TRANSFER = f.Body("BalanceRequest", {
    "asset": f.string(20, description="Asset symbol, e.g. USDT",
                      route_rules={"pattern": ASSET_PATTERN}),
    "amount": f.decimal(positive=True, description="Amount in whole units of the asset"),
}, required=("asset", "amount"))
ASSET = f.text_param("asset", "Asset symbol, e.g. BTC", location="path", max_length=20,
                     route_rules={"pattern": ASSET_PATTERN})

BALANCE = schema("BalanceResponse", {
    "type": "object", "required": ["asset", "available", "held"],
    "properties": {"asset": {"type": "string"}, "available": {"type": "string"},
                   "held": {"type": "string"}}})


def balance_json(asset: str, available: Any, held: Any) -> dict[str, Any]:
    return {"asset": asset, "available": dec(available), "held": dec(held)}


@operation("get_balances", "Balances", "Your balances (assets you hold or held)",
           access="user", responses={200: array_of(BALANCE)})
async def get_balances(request: Request) -> Response:
    principal = require_user(request)
    rows = await balances_of(request.state.services.db, uuid.UUID(principal.user_id))
    return json([balance_json(r["asset"], r["available"], r["held"]) for r in rows])


@operation("get_balance", "Balances", "Your balance of one asset", access="user",
           params=[ASSET], responses={200: BALANCE, 422: "Error"})
async def get_balance(request: Request) -> Response:
    principal = require_user(request)
    services: Services = request.state.services
    asset = _active_asset(services, ASSET.get(request))
    rows = await balances_of(services.db, uuid.UUID(principal.user_id), asset)
    if not rows:
        return json(balance_json(asset, Decimal(0), Decimal(0)))
    return json(balance_json(asset, rows[0]["available"], rows[0]["held"]))


def _active_asset(services: Services, text: str) -> str:
    asset = asset_code(text)
    if services.catalog.active_asset(asset) is None:
        raise unprocessable(f"{asset} is not supported")
    return asset


async def _transfer(request: Request,
                    route: str) -> tuple[Principal, dict[str, Any], Services]:
    """What deposit and withdraw check first, in the original's order: the caller (not
    suspended), the body's shape, then the per-user rate limit."""
    principal = require_active(request)
    body = await TRANSFER.read(request)
    services: Services = request.state.services
    services.limiter.check(request, route, principal.user_id)
    return principal, body, services


def _caps(settings: Settings) -> str:
    """The configured caps, e.g. ``"BTC 0.05, USDT 1000"``."""
    limits = sorted(settings.deposit_limits.items())
    return ", ".join(f"{asset} {plain(cap)}" for asset, cap in limits) or "none"


def _deposit_doc(settings: Settings) -> str:
    return (f"Credits a simulated deposit at once. Each request is capped per asset "
            f"(server setting DEPOSIT_LIMITS; here: {_caps(settings)}); an asset without a "
            f"cap takes any amount, and there is no cumulative cap. An amount above the "
            f"cap is refused with 400 `Maximum deposit for ASSET is CAP`.")


def _deposit_400(settings: Settings) -> str:
    return (f"Invalid request, e.g. `Amount must be greater than zero`, or an amount above "
            f"the asset's per-request cap ({_caps(settings)}): `Maximum deposit for ASSET "
            f"is CAP`")


@operation("deposit", "Balances", "Credit a demo deposit (capped per request)",
           access="user", body=TRANSFER, rate_limited=True, description=_deposit_doc,
           params=[f.IDEMPOTENCY_KEY],
           responses={200: BALANCE, 400: Reply("Error", _deposit_400), 403: "Error",
                      503: "Error", 504: "Error"})
async def deposit(request: Request) -> Response:
    principal, body, services = await _transfer(request, "deposit")
    amount: Decimal = body["amount"]
    if amount <= 0:
        raise bad_request("Amount must be greater than zero")
    # Trimmed first: the original looked the cap up untrimmed, so " BTC" escaped it.
    asset_text = body["asset"].strip(" ").upper()
    cap = services.settings.deposit_limits.get(asset_text)
    if cap is not None and amount > cap:
        raise bad_request(f"Maximum deposit for {asset_text} is {plain(cap)}")
    asset = _active_asset(services, body["asset"])
    _off_chain_only(services, asset, "deposit")
    check_places(services.catalog, "amount", amount, asset)
    outcome = await services.exchange.deposit(
        principal.user_id, asset, amount, f.IDEMPOTENCY_KEY.get(request))
    if isinstance(outcome, Rejected):
        raise rejection(outcome.code)
    return json(balance_json(asset, outcome["available"], outcome["held"]))


def _off_chain_only(services: Services, asset: str, kind: str) -> None:
    """The simulated transfers are for assets no chain carries. An asset on a configured
    chain moves only on chain: a simulated deposit of it would mint funds a user could
    then withdraw on chain from the hot wallet, and a simulated withdrawal would burn
    them."""
    if services.exchange.chain_of(asset) is None:
        return
    if kind == "deposit":  # 422 as POST /withdrawals for an asset without a chain
        raise unprocessable(f"{asset} is deposited on chain: send it to your deposit "
                            f"address (GET /api/v1/deposits/address?asset={asset})")
    raise unprocessable(f"{asset} is withdrawn on chain: POST /api/v1/withdrawals")


@operation("withdraw", "Balances", "Withdraw off-chain (the funds leave at once)",
           access="user", body=TRANSFER, rate_limited=True, params=[f.IDEMPOTENCY_KEY],
           responses={200: BALANCE, 403: "Error", 503: "Error", 504: "Error"})
async def withdraw(request: Request) -> Response:
    principal, body, services = await _transfer(request, "withdraw")
    amount: Decimal = body["amount"]
    if amount < 0:
        raise bad_request("Amount cannot be less than Zero")
    if amount == 0:  # the original answered 200 and moved nothing; refused as deposit is
        raise bad_request("Amount must be greater than zero")
    asset = _active_asset(services, body["asset"])
    _off_chain_only(services, asset, "withdraw")
    check_places(services.catalog, "amount", amount, asset)
    outcome = await services.exchange.withdraw(
        principal.user_id, asset, amount, "", f.IDEMPOTENCY_KEY.get(request),
        immediate=True)
    if isinstance(outcome, Rejected):
        if outcome.code is RejectCode.INSUFFICIENT_FUNDS:
            raise unprocessable("Insufficient balance")
        raise rejection(outcome.code)
    return json(balance_json(asset, outcome["available"], outcome["held"]))


routes = [
    Route(f"{API}/balances", get_balances, methods=["GET"]),
    Route(f"{API}/balances/deposit", deposit, methods=["POST"]),
    Route(f"{API}/balances/withdraw", withdraw, methods=["POST"]),
    Route(f"{API}/balances/{{asset}}", get_balance, methods=["GET"]),
]
