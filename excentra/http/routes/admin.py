"""``/api/v1/admin``: users with balances, suspension, roles, stats (reference §1.10).

System accounts (the market maker, the fee account) are not users: not listed, not counted,
and unknown (404) to the suspend and role routes.

Every route needs an access token whose ``role`` claim is ``admin`` *and* a caller who is
an admin now: the role is read from the database on each of these (rare) calls
(``require_admin_now``), so a demotion made here or by another process counts at once
(the original checked the claim only). The role route updates the in-memory role map
with the row, so the other admin routes (assets, pairs, custody) see a demotion at once
too. Suspension is enforced (API.md): the in-memory set every state-changing request
consults is updated together with the row, and the user's refresh tokens are revoked so
no new access token can be minted.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.db.accounts import expire_refresh_tokens, set_role, set_suspended
from excentra.db.admin import counts, day_before, users_page, volume_since
from excentra.db.database import Row
from excentra.http import fields as f
from excentra.http.auth import require_admin_now
from excentra.http.errors import ApiError, not_found
from excentra.http.openapi import SCHEMAS, array_of, operation, schema
from excentra.http.render import dec, json
from excentra.http.routes.users import USER, user_json
from excentra.http.services import Services

log = logging.getLogger("excentra.http.admin")

API = "/api/v1"
ROLES = ("user", "admin")
"""What an admin may give: ``system`` is for the exchange's own accounts only (the
original took it too, and the user then vanished from the admin's list)."""

USER_ID = f.uuid_param("user_id", "The user's id")
SUSPEND = f.Body("SuspendUserRequest", {
    "suspended": f.boolean(nullable=True,
                           description="The new flag; absent (or no body at all) toggles it"),
}, optional_body=True)
ROLE = f.Body("UpdateUserRoleRequest", {"role": f.enum(*ROLES)}, required=("role",))

_BALANCE = schema("BalanceSummary", {
    "type": "object", "required": ["asset", "available", "held"],
    "properties": {"asset": {"type": "string"}, "available": {"type": "string"},
                   "held": {"type": "string"}}})
SUMMARY = schema("UserSummary", {
    "type": "object",
    "required": [*SCHEMAS[USER]["required"], "balances"],
    "properties": {**SCHEMAS[USER]["properties"], "balances": array_of(_BALANCE)}})
USERS_PAGE = schema("PaginatedResponse_UserSummary", {
    "type": "object", "required": ["data", "page", "limit", "total"],
    "properties": {"data": array_of(SUMMARY), "page": {"type": "integer"},
                   "limit": {"type": "integer"}, "total": {"type": "integer"}}})
_VOLUME = schema("PairVolume", {
    "type": "object", "required": ["symbol", "volume"],
    "properties": {"symbol": {"type": "string"}, "volume": {"type": "string"}}})
STATS = schema("AdminStats", {
    "type": "object",
    "required": ["total_users", "total_trades", "active_ws_connections", "orders_processed",
                 "uptime_seconds", "volume_24h"],
    "properties": {"total_users": {"type": "integer"}, "total_trades": {"type": "integer"},
                   "active_ws_connections": {"type": "integer", "minimum": 0},
                   "orders_processed": {"type": "integer", "minimum": 0},
                   "uptime_seconds": {"type": "integer", "minimum": 0},
                   "volume_24h": array_of(_VOLUME)}})


def summary_json(user: Row, balances: list[Row]) -> dict[str, Any]:
    return {**user_json(user),
            "balances": [{"asset": b["asset"], "available": dec(b["available"]),
                          "held": dec(b["held"])} for b in balances]}


@operation("get_all_users_summary", "Admin", "All users with their balances, paginated",
           access="admin", params=[f.PAGE, f.LIMIT, f.ORDER], responses={200: USERS_PAGE})
async def list_users(request: Request) -> Response:
    await require_admin_now(request)
    services: Services = request.state.services
    page, limit = f.PAGE.get(request), f.LIMIT.get(request)
    users, balances, total = await users_page(
        services.db, page=page, limit=limit, descending=f.ORDER.get(request) == "desc")
    return json({"data": [summary_json(u, balances.get(u["id"], [])) for u in users],
                 "page": page, "limit": limit, "total": total})


def _unknown(user_id: uuid.UUID) -> ApiError:
    return not_found(f"User `{user_id}` not found")


@operation("suspend_user", "Admin", "Suspend or reinstate a user (no body: toggle)",
           access="admin", params=[USER_ID], body=SUSPEND, responses={200: USER, 404: "Error"})
async def suspend_user(request: Request) -> Response:
    admin = await require_admin_now(request)
    user_id = USER_ID.get(request)
    body = await SUSPEND.read(request)
    services: Services = request.state.services
    row = await set_suspended(services.db, user_id, body.get("suspended"))
    if row is None:
        raise _unknown(user_id)
    suspended = bool(row["is_suspended"])
    services.suspended.set(user_id, suspended)
    services.exchange.set_suspended(str(user_id), suspended)
    if suspended:
        await expire_refresh_tokens(services.db, user_id)
    log.info("user suspension changed", extra={"user_id": str(user_id),
                                                "suspended": suspended,
                                                "by": admin.user_id})
    return json(user_json(row))


@operation("update_role", "Admin",
           "Change a user's role (a demotion at once, a promotion at the user's next token)",
           access="admin", params=[USER_ID], body=ROLE, responses={200: USER, 404: "Error"})
async def update_role(request: Request) -> Response:
    admin = await require_admin_now(request)
    user_id = USER_ID.get(request)
    body = await ROLE.read(request)
    services: Services = request.state.services
    row = await set_role(services.db, user_id, body["role"])
    if row is None:
        raise _unknown(user_id)
    services.roles.set(user_id, row["role"])
    log.info("user role changed", extra={"user_id": str(user_id), "role": body["role"],
                                         "by": admin.user_id})
    return json(user_json(row))


@operation("get_admin_stat", "Admin", "Exchange-wide figures", access="admin",
           responses={200: STATS})
async def stats(request: Request) -> Response:
    await require_admin_now(request)
    services: Services = request.state.services
    totals = await counts(services.db)
    volumes = await volume_since(services.db, day_before(datetime.now(UTC)))
    counters = services.counters
    return json({"total_users": totals.users, "total_trades": totals.trades,
                 "active_ws_connections": counters.ws_connections,
                 "orders_processed": counters.orders_processed,
                 "uptime_seconds": counters.uptime_seconds,
                 "volume_24h": [{"symbol": s, "volume": dec(v)} for s, v in volumes]})


routes = [
    Route(f"{API}/admin/users", list_users, methods=["GET"]),
    Route(f"{API}/admin/users/{{user_id}}/suspend", suspend_user, methods=["PATCH"]),
    Route(f"{API}/admin/users/{{user_id}}/role", update_role, methods=["PATCH"]),
    Route(f"{API}/admin/stats", stats, methods=["GET"]),
]
