"""Request shapes, declared once: each declaration parses and validates input *and* is the
JSON Schema the OpenAPI document shows for it.

Status codes follow API.md: malformed JSON (and NaN/Infinity literals) → 400; wrong
content type → 415; a body that does not fit its shape (missing field, wrong JSON type,
unknown enum value, a decimal string that does not parse) → 422; a decimal that parses but
is absurd (exponent, NaN, Infinity, more than 10^15) → 400; bad query/path parameters →
400. All in the ``{"error": ...}`` envelope.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request

from excentra.http.errors import ApiError, bad_request

MAX_BODY = 64 * 1024
"""Largest request body read (bytes); more → 413."""
MAX_MAGNITUDE = Decimal(10) ** 15
"""Largest absolute amount accepted in whole units (API.md "Amount limits")."""
_PLAIN_DECIMAL = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")
_NUMBERISH = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)|[+-]?(nan|inf|infinity|snan)",
                        re.IGNORECASE)


class ShapeError(Exception):
    """The value does not fit its declared shape (→ 422)."""


# -- fields ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prop:
    """One body property: its JSON Schema and its parser."""

    schema: dict[str, Any]
    parse: Callable[[str, Any], Any]
    nullable: bool = False
    description: str = ""

    def json_schema(self) -> dict[str, Any]:
        out = dict(self.schema)
        if self.nullable:
            types = out.get("type")
            if isinstance(types, str):
                out["type"] = [types, "null"]
            elif isinstance(types, list):
                out["type"] = [*types, "null"]
        if self.description:
            out["description"] = self.description
        return out


def string(max_length: int | None = None, *, nullable: bool = False,
           description: str = "") -> Prop:
    schema: dict[str, Any] = {"type": "string"}
    if max_length is not None:
        schema["maxLength"] = max_length

    def parse(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ShapeError(f"{name}: invalid type, expected a string")
        if max_length is not None and len(value) > max_length:
            raise ShapeError(f"{name}: longer than {max_length} characters")
        return value

    return Prop(schema, parse, nullable, description)


def decimal(*, nullable: bool = False, description: str = "") -> Prop:
    """A decimal given as a JSON string (preferred) or number; returned as ``Decimal``."""
    return Prop({"type": ["string", "number"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
                 "examples": ["0.5"]}, parse_decimal, nullable, description)


def parse_decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ShapeError(f"{name}: invalid type, expected a decimal string")
    text = value.strip() if isinstance(value, str) else str(value)
    if not _PLAIN_DECIMAL.fullmatch(text):
        if _NUMBERISH.fullmatch(text):
            raise bad_request(f"{name} must be a plain decimal number "
                              "(no exponent, NaN or Infinity)")
        raise ShapeError(f"{name}: invalid decimal {text[:40]!r}")
    number = Decimal(text)
    if abs(number) > MAX_MAGNITUDE:
        raise bad_request(f"{name} is too large (at most 10^15)")
    return number


def enum(*values: str, nullable: bool = False, description: str = "") -> Prop:
    def parse(name: str, value: Any) -> str:
        if value not in values:
            raise ShapeError(f"{name}: unknown variant {str(value)[:40]!r}, expected one of "
                             f"{', '.join(values)}")
        return str(value)

    return Prop({"type": "string", "enum": list(values)}, parse, nullable, description)


def boolean(*, nullable: bool = False, description: str = "") -> Prop:
    def parse(name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ShapeError(f"{name}: invalid type, expected a boolean")
        return value

    return Prop({"type": "boolean"}, parse, nullable, description)


def integer(minimum: int, maximum: int, *, description: str = "") -> Prop:
    def parse(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ShapeError(f"{name}: invalid type, expected an integer")
        if not minimum <= value <= maximum:
            raise ShapeError(f"{name}: must be between {minimum} and {maximum}")
        return value

    return Prop({"type": "integer", "minimum": minimum, "maximum": maximum}, parse,
                description=description)


# -- bodies ---------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads(raw: bytes) -> Any:
    """Parse JSON exactly: floats as ``Decimal``; NaN/Infinity literals are malformed."""
    return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)


@dataclass(frozen=True)
class Body:
    """A JSON object body: its name in the OpenAPI components and its properties."""

    name: str
    properties: Mapping[str, Prop]
    required: Sequence[str] = ()
    optional_body: bool = False
    """An absent or empty body is ``{}`` (e.g. the admin suspend toggle)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object", "required": list(self.required),
                "properties": {k: p.json_schema() for k, p in self.properties.items()},
                **self.extra}

    async def read(self, request: Request) -> dict[str, Any]:
        raw = await read_body(request)
        if not raw.strip() and self.optional_body:
            return {}
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise ApiError(415, "Expected request with `Content-Type: application/json`")
        try:
            value = loads(raw)
        except (ValueError, RecursionError) as exc:
            raise bad_request(f"Failed to parse the request body as JSON: {exc}") from None
        try:
            return self.parse(value)
        except ShapeError as exc:
            raise ApiError(422, f"Failed to deserialize the JSON body into the target type: "
                                f"{exc}") from None

    def parse(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ShapeError("invalid type, expected a JSON object")
        out: dict[str, Any] = {}
        for name in self.required:
            if name not in value:
                raise ShapeError(f"missing field `{name}`")
        for name, prop in self.properties.items():
            raw = value.get(name)
            if raw is None:
                if name in value and not prop.nullable and name in self.required:
                    raise ShapeError(f"{name}: must not be null")
                out[name] = None
                continue
            out[name] = prop.parse(name, raw)
        return out


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"Request body larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"Request body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# -- query and path parameters ---------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A query (or path) parameter: its OpenAPI entry and its parser (400 on bad input)."""

    name: str
    schema: dict[str, Any]
    parse: Callable[[str], Any]
    default: Any = None
    description: str = ""
    location: str = "query"

    def get(self, request: Request) -> Any:
        source = request.path_params if self.location == "path" else request.query_params
        raw = source.get(self.name)
        if raw is None:
            return self.default
        try:
            return self.parse(str(raw))
        except (ValueError, InvalidOperation) as exc:
            raise bad_request(f"Invalid {self.location} parameter `{self.name}`: {exc}"
                              ) from None

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.location, "required": self.location == "path",
                "description": self.description, "schema": self.schema}


def int_param(name: str, default: int, minimum: int, maximum: int,
              description: str = "") -> Param:
    def parse(text: str) -> int:
        if not text.strip().isdigit() and not (text.strip().startswith("-")
                                               and text.strip()[1:].isdigit()):
            raise ValueError(f"expected an integer, got {text[:40]!r}")
        value = int(text)
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return Param(name, {"type": "integer", "minimum": minimum, "maximum": maximum,
                        "default": default}, parse, default, description)


def choice_param(name: str, values: Sequence[str], default: str | None,
                 description: str = "") -> Param:
    def parse(text: str) -> str:
        lowered = text.strip().lower()
        if lowered not in values:
            raise ValueError(f"unknown value {text[:40]!r}, expected one of {', '.join(values)}")
        return lowered

    return Param(name, {"type": "string", "enum": list(values)}, parse, default, description)


def text_param(name: str, description: str = "", location: str = "query",
               max_length: int = 200) -> Param:
    def parse(text: str) -> str:
        if len(text) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        return text

    return Param(name, {"type": "string", "maxLength": max_length}, parse, None, description,
                 location)


def uuid_param(name: str, description: str = "") -> Param:
    def parse(text: str) -> uuid.UUID:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise ValueError(f"not a UUID: {text[:40]!r}") from None

    return Param(name, {"type": "string", "format": "uuid"}, parse, None, description, "path")


PAGE = int_param("page", 1, 1, 1_000_000, "Page number, from 1")
LIMIT = int_param("limit", 20, 1, 1000, "Items per page (1..1000)")
ORDER = choice_param("order", ("asc", "desc"), "desc", "Sort by creation time: asc or desc")
