"""The ceiling for ``excentra bench http``: a trivial Starlette app on the same stack that
only parses the order's JSON and verifies the caller's JWT, then answers. Nothing an
exchange does (no validation, no core, no database) — what is left is the cost of
uvicorn + Starlette + JSON + HS256 on this machine."""

from __future__ import annotations

import json
import os

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_SECRET = os.environ.get("JWT_SECRET", "")


async def place(request: Request) -> Response:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    try:
        claims = jwt.decode(token, _SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        return JSONResponse({"error": "User not logged in"}, status_code=401)
    body = json.loads(await request.body())
    return JSONResponse({"order_id": claims["user_id"], "status": "open",
                         "symbol": body["symbol"]})


app = Starlette(routes=[Route("/api/v1/orders", place, methods=["POST"])])
