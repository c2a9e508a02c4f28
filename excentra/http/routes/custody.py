"""On-chain custody: ``/api/v1/deposits`` (a user's deposit address, its chain deposits),
``/api/v1/withdrawals`` (request one, list them) and the admins' lists and reviews.

Only assets with a chain (``ETH_RPC_URL``, ``ETH_TOKENS``) take part; the others keep the
simulated ``/balances/deposit`` and ``/balances/withdraw``. Everything a withdrawal request
can be refused for here is checked before the exchange holds anything, so a 4xx never
leaves funds held. The withdrawal lists show the simulated withdrawals too (``chain``
null): they are the same table and the user's history is one list.
"""

from __future__ import annotations

import logging
import re
import uuid
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.actors.bridge import Rejected
from excentra.actors.supervisor import Chain
from excentra.chain.wallet import parse_address
from excentra.db.custody import Query, list_deposits, list_withdrawals, withdrawal_status
from excentra.db.database import Row
from excentra.engine import RejectCode
from excentra.engine.precision import plain
from excentra.http import fields as f
from excentra.http.auth import (
    Principal,
    require_active,
    require_active_admin,
    require_admin,
    require_user,
)
from excentra.http.errors import ApiError, bad_request, rejection, unprocessable
from excentra.http.openapi import SCHEMAS, Link, array_of, operation, schema
from excentra.http.render import dec, json, ts
from excentra.http.services import Services
from excentra.http.symbols import ASSET_PATTERN, asset_like
from excentra.http.validate import check_places, places

log = logging.getLogger("excentra.http.custody")

API = "/api/v1"
DEPOSIT_STATUSES = ("pending", "credited", "ignored", "orphaned", "reversed")
WITHDRAWAL_STATUSES = ("pending", "pending_approval", "queued", "broadcast", "confirmed",
                       "failed", "cancelled", "rejected")
MAX_REASON = 500


def _uuid_text(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValueError(f"not a UUID: {text[:40]!r}") from None


ASSET_PARAM = f.text_param("asset", "Asset symbol, e.g. ETH", max_length=20,
                           route_rules={"pattern": ASSET_PATTERN})
ADDRESS_ASSET = f.text_param("asset", "Asset symbol with a chain, e.g. ETH", max_length=20,
                             route_rules={"pattern": ASSET_PATTERN}, required=True)
DEPOSIT_STATUS = f.status_list_param(DEPOSIT_STATUSES)
WITHDRAWAL_STATUS = f.status_list_param(WITHDRAWAL_STATUSES)
USER_FILTER = f.Param("user_id", {"type": "string", "format": "uuid"}, _uuid_text, None,
                      "Only this user's")
WITHDRAWAL_ID = f.Param("withdrawal_id", {"type": "string", "format": "uuid"}, str, None,
                        "The withdrawal's id", "path")
"""Not parsed here: a malformed id is an unknown withdrawal (404), as the exchange says."""

WITHDRAW = f.Body("WithdrawalRequest", {
    "asset": f.string(20, description="Asset symbol with a chain, e.g. ETH",
                      route_rules={"pattern": ASSET_PATTERN}),
    "amount": f.decimal(positive=True,
                        description="Amount to receive, in whole units; the network fee is "
                                    "held on top of it"),
    "address": f.string(200, description="Destination: 0x and 40 hex digits; mixed case "
                                         "must be its EIP-55 checksummed form"),
}, required=("asset", "amount", "address"))
_WITHDRAWAL_ID = {"withdrawal_id": "$response.body#/id"}
"""Where a new withdrawal's id is, for the links to its review."""
REASON_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
"""The text rule on one line: no line or paragraph separator either."""
REJECT = f.Body("RejectWithdrawalRequest", {
    "reason": f.string(MAX_REASON, nullable=True,
                       description="Why (kept with the withdrawal, shown to its owner), on "
                                   "one line",
                       route_rules={"pattern": REASON_PATTERN},
                       bad_text="reason must be printable text on one line"),
}, optional_body=True)

_STRING, _NULLABLE = {"type": "string"}, {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_OWNER = {"user_id": {"type": "string", "format": "uuid"}, "email": _STRING}


def _page_of(name: str, item: str) -> str:
    return schema(name, {
        "type": "object", "required": ["data", "page", "limit", "total"],
        "properties": {"data": array_of(item), "page": {"type": "integer"},
                       "limit": {"type": "integer"}, "total": {"type": "integer"}}})


def _with_owner(name: str, base: str) -> str:
    return schema(name, {"type": "object",
                         "required": [*SCHEMAS[base]["required"], *_OWNER],
                         "properties": {**SCHEMAS[base]["properties"], **_OWNER}})


DEPOSIT_ADDRESS = schema("DepositAddress", {
    "type": "object", "required": ["asset", "chain", "address"],
    "properties": {"asset": _STRING, "chain": _STRING,
                   "address": {**_STRING, "description": "EIP-55 checksummed; the same "
                                                         "for every asset of the chain"}}})
DEPOSIT = schema("ChainDeposit", {
    "type": "object",
    "required": ["id", "chain", "asset", "amount", "status", "confirmations",
                 "required_confirmations", "tx_hash", "log_index", "block_number",
                 "address", "created_at", "credited_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "chain": _STRING, "asset": _STRING,
        "amount": _STRING, "status": {"type": "string", "enum": list(DEPOSIT_STATUSES)},
        "confirmations": {"type": "integer", "minimum": 0},
        "required_confirmations": {"type": ["integer", "null"],
                                   "description": "Blocks needed before the credit (null: "
                                                  "its chain is no longer configured)"},
        "tx_hash": _STRING,
        "log_index": {"type": "integer", "description": "-1 for ETH itself, else the "
                                                        "token Transfer log's index"},
        "block_number": {"type": ["integer", "null"]}, "address": _STRING,
        "created_at": _TIME, "credited_at": {**_TIME, "type": ["string", "null"]}}})
DEPOSIT_PAGE = _page_of("PaginatedResponse_ChainDeposit", DEPOSIT)
ADMIN_DEPOSIT = _with_owner("AdminChainDeposit", DEPOSIT)
ADMIN_DEPOSIT_PAGE = _page_of("PaginatedResponse_AdminChainDeposit", ADMIN_DEPOSIT)
WITHDRAWAL = schema("Withdrawal", {
    "type": "object",
    "required": ["id", "chain", "asset", "amount", "fee", "address", "status", "tx_hash",
                 "nonce", "reason", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "chain": {**_NULLABLE, "description": "null: a simulated (off-chain) withdrawal"},
        "asset": _STRING, "amount": _STRING, "fee": _STRING, "address": _NULLABLE,
        "status": {"type": "string", "enum": list(WITHDRAWAL_STATUSES)},
        "tx_hash": _NULLABLE, "nonce": {"type": ["integer", "null"]},
        "reason": {**_NULLABLE, "description": "Why it failed or was rejected"},
        "created_at": _TIME, "updated_at": _TIME}})
WITHDRAWAL_PAGE = _page_of("PaginatedResponse_Withdrawal", WITHDRAWAL)
ADMIN_WITHDRAWAL = _with_owner("AdminWithdrawal", WITHDRAWAL)
ADMIN_WITHDRAWAL_PAGE = _page_of("PaginatedResponse_AdminWithdrawal", ADMIN_WITHDRAWAL)
REQUESTED = schema("WithdrawalCreated", {
    "type": "object",
    "required": ["id", "status", "asset", "amount", "fee", "address", "available", "held"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["queued", "pending_approval"],
                   "description": "pending_approval: above the asset's limit, an admin "
                                  "decides first"},
        "asset": _STRING, "amount": _STRING, "fee": _STRING, "address": _STRING,
        "available": {**_STRING, "description": "The balance after the hold"},
        "held": _STRING}})
REVIEWED = schema("WithdrawalReviewed", {
    "type": "object", "required": ["id", "status", "asset", "amount", "fee", "tx_hash"],
    "properties": {"id": {"type": "string", "format": "uuid"},
                   "status": {"type": "string", "enum": ["queued", "rejected"]},
                   "asset": _STRING, "amount": _STRING, "fee": _STRING,
                   "tx_hash": _NULLABLE}})


# -- rendering ------------------------------------------------------------------------------


def deposit_json(row: Row, services: Services) -> dict[str, Any]:
    chain = services.exchange.chains.get(row["chain"])
    return {"id": str(row["id"]), "chain": row["chain"], "asset": row["asset"],
            "amount": dec(row["amount"]), "status": row["status"],
            "confirmations": int(row["confirmations"]),
            "required_confirmations": None if chain is None else
            chain.settings.confirmations,
            "tx_hash": row["tx_hash"], "log_index": int(row["log_index"]),
            "block_number": None if row["block_number"] is None else int(row["block_number"]),
            "address": parse_address(row["address"]),  # stored lowercase
            "created_at": ts(row["created_at"]),
            "credited_at": None if row["credited_at"] is None else ts(row["credited_at"])}


def withdrawal_json(row: Row) -> dict[str, Any]:
    """Never the signed transaction (``raw_tx``): it is not even selected."""
    return {"id": str(row["id"]), "chain": row["chain"], "asset": row["asset"],
            "amount": dec(row["amount"]), "fee": dec(row["fee"]),
            "address": row["to_address"] or None,  # a simulated withdrawal has none
            "status": row["status"], "tx_hash": row["tx_hash"],
            "nonce": None if row["nonce"] is None else int(row["nonce"]),
            "reason": row["reason"], "created_at": ts(row["created_at"]),
            "updated_at": ts(row["updated_at"])}


def _owned(item: dict[str, Any], row: Row) -> dict[str, Any]:
    return {**item, "user_id": str(row["user_id"]), "email": row["email"]}


# -- checks ---------------------------------------------------------------------------------


def _chain_asset(services: Services, text: str, what: str, simulated: str
                 ) -> tuple[str, Chain]:
    """The asset and its chain: 400 for a malformed code (not the schema's pattern); 422,
    as ``/balances`` answers, for a well-formed one that names no active asset or an asset
    without a chain (``simulated``: the ``/balances`` route that serves it instead)."""
    asset = text.strip(" ")
    if not asset_like(asset):  # the schema's pattern (before upper(): "ß" is "SS")
        raise bad_request(f"{asset[:20].upper() or 'An empty asset'} is not supported")
    asset = asset.upper()
    if services.catalog.active_asset(asset) is None:
        raise unprocessable(f"{asset} is not supported")
    chain = services.exchange.chain_of(asset)
    if chain is None:
        raise unprocessable(f"{asset} has no on-chain {what}; use "
                            f"{API}/balances/{simulated}")
    return asset, chain


def _asset_filter(services: Services, text: str | None) -> str | None:
    """The ``asset`` filter: 400 for a malformed code, 422 for a well-formed one that
    names no asset (as the order and trade lists answer an unknown ``pair``)."""
    if text is None:
        return None
    asset = text.strip(" ")
    if not asset_like(asset):
        raise bad_request(f"unknown asset: {asset[:20].upper()}")
    if asset.upper() not in services.catalog.assets:
        raise unprocessable(f"unknown asset: {asset.upper()}")
    return asset.upper()


def _query(request: Request, services: Services, status: f.Param, **fixed: Any) -> Query:
    """The list parameters every custody list shares (status, asset, page, limit, order)."""
    return Query(statuses=status.get(request),
                 asset=_asset_filter(services, ASSET_PARAM.get(request)),
                 page=f.PAGE.get(request), limit=f.LIMIT.get(request),
                 descending=f.ORDER.get(request) == "desc", **fixed)


def _page(q: Query, items: list[dict[str, Any]], total: int) -> Response:
    return json({"data": items, "page": q.page, "limit": q.limit, "total": total})


# -- deposits -------------------------------------------------------------------------------


@operation("get_deposit_address", "Deposits", "Your deposit address for an asset with a "
                                              "chain (made on first ask, then always the same)",
           access="user", params=[ADDRESS_ASSET],
           responses={200: DEPOSIT_ADDRESS, 422: "Error"})
async def deposit_address(request: Request) -> Response:
    principal = require_user(request)
    services: Services = request.state.services
    text = ADDRESS_ASSET.get(request)
    if text is None:
        raise bad_request("Query parameter `asset` is required, e.g. ?asset=ETH")
    asset, chain = _chain_asset(services, text, "deposits", "deposit")
    address = await services.exchange.deposit_address(principal.user_id, asset)
    assert address is not None  # the asset has a chain
    return json({"asset": asset, "chain": chain.settings.name, "address": address})


@operation("get_deposits", "Deposits", "Your chain deposits (pending ones with their "
                                       "confirmations), paginated",
           access="user", params=[DEPOSIT_STATUS, ASSET_PARAM, f.PAGE, f.LIMIT, f.ORDER],
           responses={200: DEPOSIT_PAGE, 422: "Error"})
async def get_deposits(request: Request) -> Response:
    principal = require_user(request)
    services: Services = request.state.services
    q = _query(request, services, DEPOSIT_STATUS,
               user_id=uuid.UUID(principal.user_id))
    rows, total = await list_deposits(services.db, q)
    return _page(q, [deposit_json(r, services) for r in rows], total)


# -- withdrawals ----------------------------------------------------------------------------


@operation("request_withdrawal", "Withdrawals", "Withdraw on chain: the amount and the "
                                                "network fee are held until it is sent",
           access="user", body=WITHDRAW, rate_limited=True, params=[f.IDEMPOTENCY_KEY],
           responses={201: REQUESTED, 403: "Error", 422: "Error", 503: "Error",
                      504: "Error"},
           links={"ApproveWithdrawal": Link("approve_withdrawal", _WITHDRAWAL_ID),
                  "RejectWithdrawal": Link("reject_withdrawal", _WITHDRAWAL_ID)})
async def request_withdrawal(request: Request) -> Response:
    principal = require_active(request)
    body = await WITHDRAW.read(request)
    services: Services = request.state.services
    services.limiter.check(request, "withdraw", principal.user_id)  # shared with /balances
    amount: Decimal = body["amount"]
    if amount <= 0:
        raise bad_request("Amount must be greater than zero")
    asset, chain = _chain_asset(services, body["asset"], "withdrawals", "withdraw")
    check_places(services.catalog, "amount", amount, asset)
    token = chain.settings.token(asset)
    if token is not None and places(amount) > token.decimals:  # the contract's unit
        raise unprocessable(f"amount has more decimal places than the {asset} contract "
                            f"allows ({token.decimals} decimals)")
    try:
        address = parse_address(body["address"])
    except ValueError as exc:
        raise bad_request(f"address: {exc}") from None
    if int(address, 16) == 0:
        raise bad_request("address: the zero address would burn the funds")
    outcome = await services.exchange.chain_withdraw(
        principal.user_id, asset, amount, address, f.IDEMPOTENCY_KEY.get(request))
    if isinstance(outcome, Rejected):
        raise rejection(outcome.code, _withdraw_message(chain, asset, outcome.code))
    return json({"id": outcome["id"], "status": outcome["status"], "asset": outcome["asset"],
                 "amount": outcome["amount"], "fee": outcome["fee"],
                 "address": outcome["to_address"], "available": outcome["available"],
                 "held": outcome["held"]}, 201)


def _withdraw_message(chain: Chain, asset: str, code: RejectCode) -> str | None:
    """The refusals worth the asset's figures (else the code's default message)."""
    s = chain.settings
    if code is RejectCode.BELOW_MINIMUM:
        return f"Amount is below the minimum {asset} withdrawal of {plain(s.withdrawal_min[asset])}"
    if code is RejectCode.INSUFFICIENT_FUNDS:
        return (f"Insufficient balance: a withdrawal holds the amount plus the "
                f"{plain(s.withdrawal_fee[asset])} {asset} network fee")
    return None


@operation("get_withdrawals", "Withdrawals", "Your withdrawals, on-chain and simulated, "
                                             "paginated",
           access="user", params=[WITHDRAWAL_STATUS, ASSET_PARAM, f.PAGE, f.LIMIT, f.ORDER],
           responses={200: WITHDRAWAL_PAGE, 422: "Error"})
async def get_withdrawals(request: Request) -> Response:
    principal = require_user(request)
    services: Services = request.state.services
    q = _query(request, services, WITHDRAWAL_STATUS,
               user_id=uuid.UUID(principal.user_id))
    rows, total = await list_withdrawals(services.db, q)
    return _page(q, [withdrawal_json(r) for r in rows], total)


# -- admins ---------------------------------------------------------------------------------


@operation("admin_get_deposits", "Admin", "Every user's chain deposits, paginated",
           access="admin",
           params=[DEPOSIT_STATUS, USER_FILTER, ASSET_PARAM, f.PAGE, f.LIMIT, f.ORDER],
           responses={200: ADMIN_DEPOSIT_PAGE, 422: "Error"})
async def admin_deposits(request: Request) -> Response:
    require_admin(request)
    services: Services = request.state.services
    q = _query(request, services, DEPOSIT_STATUS,
               user_id=USER_FILTER.get(request), with_email=True)
    rows, total = await list_deposits(services.db, q)
    return _page(q, [_owned(deposit_json(r, services), r) for r in rows], total)


@operation("admin_get_withdrawals", "Admin", "Every user's withdrawals, paginated "
                                             "(status=pending_approval: those to review)",
           access="admin",
           params=[WITHDRAWAL_STATUS, USER_FILTER, ASSET_PARAM, f.PAGE, f.LIMIT, f.ORDER],
           responses={200: ADMIN_WITHDRAWAL_PAGE, 422: "Error"})
async def admin_withdrawals(request: Request) -> Response:
    require_admin(request)
    services: Services = request.state.services
    q = _query(request, services, WITHDRAWAL_STATUS,
               user_id=USER_FILTER.get(request), with_email=True)
    rows, total = await list_withdrawals(services.db, q)
    return _page(q, [_owned(withdrawal_json(r), r) for r in rows], total)


async def _review(request: Request, admin: Principal, approve: bool,
                  reason: str | None) -> Response:
    services: Services = request.state.services
    withdrawal_id: str = WITHDRAWAL_ID.get(request)
    outcome = await services.exchange.review_withdrawal(withdrawal_id, approve, reason)
    if isinstance(outcome, Rejected):
        raise await _review_refusal(services, withdrawal_id, outcome.code)
    log.info("withdrawal reviewed", extra={"withdrawal_id": outcome["id"],
                                           "status": outcome["status"], "by": admin.user_id})
    return json(outcome)


async def _review_refusal(services: Services, withdrawal_id: str,
                          code: RejectCode) -> ApiError:
    """The ledger knows only the withdrawals still holding funds: one that is finished
    (rejected, confirmed, failed) or simulated is "not found" there, but it exists, so
    it is a conflict here; 404 is kept for an id no withdrawal has."""
    if code in (RejectCode.WITHDRAWAL_NOT_FOUND, RejectCode.WITHDRAWAL_WRONG_STATE):
        try:
            status = await withdrawal_status(services.db, uuid.UUID(withdrawal_id))
        except ValueError:
            status = None
        if status is not None:
            return rejection(RejectCode.WITHDRAWAL_WRONG_STATE,
                             f"The withdrawal is {status}: only one awaiting approval "
                             "can be approved or rejected")
    return rejection(code)


@operation("approve_withdrawal", "Admin", "Approve a withdrawal awaiting approval (it is "
                                          "queued to be sent)",
           access="admin", params=[WITHDRAWAL_ID],
           responses={200: REVIEWED, 404: "Error", 409: "Error", 503: "Error",
                      504: "Error"})
async def approve_withdrawal(request: Request) -> Response:
    return await _review(request, require_active_admin(request), True, None)


@operation("reject_withdrawal", "Admin", "Reject a withdrawal awaiting approval (its hold "
                                         "is released)",
           access="admin", params=[WITHDRAWAL_ID], body=REJECT,
           responses={200: REVIEWED, 404: "Error", 409: "Error", 503: "Error",
                      504: "Error"})
async def reject_withdrawal(request: Request) -> Response:
    admin = require_active_admin(request)
    body = await REJECT.read(request)  # the text rule: no NUL, which PostgreSQL refuses
    given = body.get("reason") or ""
    if not re.fullmatch(REASON_PATTERN, given):
        raise bad_request("reason must be printable text on one line")
    return await _review(request, admin, False, given.strip() or None)


routes = [
    Route(f"{API}/deposits/address", deposit_address, methods=["GET"]),
    Route(f"{API}/deposits", get_deposits, methods=["GET"]),
    Route(f"{API}/withdrawals", request_withdrawal, methods=["POST"]),
    Route(f"{API}/withdrawals", get_withdrawals, methods=["GET"]),
    Route(f"{API}/admin/deposits", admin_deposits, methods=["GET"]),
    Route(f"{API}/admin/withdrawals", admin_withdrawals, methods=["GET"]),
    Route(f"{API}/admin/withdrawals/{{withdrawal_id}}/approve", approve_withdrawal,
          methods=["POST"]),
    Route(f"{API}/admin/withdrawals/{{withdrawal_id}}/reject", reject_withdrawal,
          methods=["POST"]),
]
