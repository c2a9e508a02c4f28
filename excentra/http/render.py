"""Values as the API writes them: decimals as plain strings, timestamps RFC 3339 UTC with
``Z`` and microseconds, UUIDs lowercase."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse, Response

from excentra.engine.precision import plain
from excentra.timefmt import api_time


def dec(value: Decimal | str | int | None) -> str | None:
    if value is None:
        return None
    return plain(value if isinstance(value, Decimal) else Decimal(value))


def ts(value: datetime) -> str:
    return api_time(value)


def uid(value: uuid.UUID | str) -> str:
    return str(value)


def json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)
