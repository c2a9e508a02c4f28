"""Request shapes, declared once: each declaration parses and validates input *and* is the
JSON Schema the OpenAPI document shows for it.

Status codes follow API.md: malformed JSON (and NaN/Infinity literals) → 400; wrong
content type → 415; a body that does not fit its shape (missing field, wrong JSON type,
unknown enum value, a decimal string that does not parse) → 422; a decimal written in a
form the schema does not allow (exponent, NaN, Infinity, ``+``, spaces, ``"1."``, ``".5"``,
non-ASCII digits) or absurd (more than 10^15) → 400; text with a control character or a
lone surrogate → 400 naming the field; bad query/path parameters → 400. All in the
``{"error": ...}`` envelope.

Text rule (every string field and string parameter): no C0 control (U+0000–U+001F), DEL
(U+007F) or C1 control (U+0080–U+009F), and no lone surrogate (JSON ``"\ud800"`` decodes
to one; it cannot be stored or encoded). The schema says so with :data:`TEXT_PATTERN` (a
JSON Schema pattern cannot speak of lone surrogates; the description does).
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
DECIMAL_PATTERN = r"^-?0*([0-9]{1,15}(\.[0-9]+)?|1000000000000000(\.0+)?)$"
"""The one form of a decimal string, in the schema and on the server: ASCII digits only
(Python's ``\\d`` and ``Decimal`` also take Arabic-Indic and other digits), at most
``MAX_MAGNITUDE`` (the server says "too large" for that and "plain decimal" for the form)."""
POSITIVE_DECIMAL_PATTERN = (r"^(0*[1-9][0-9]{0,14}(\.[0-9]+)?|0+\.[0-9]*[1-9][0-9]*"
                            r"|0*1000000000000000(\.0+)?)$")
"""``DECIMAL_PATTERN`` for an amount that must be above zero (the routes refuse the rest
with their own 400 messages, e.g. ``Amount must be greater than zero``)."""
MAX_PLACES = MAX_BODY
"""Most decimal places a JSON number may write out (``1e-70000``): no string that fits in a
body has more, and far fewer are refused later by the asset's decimals. Bounded so that no
``Decimal`` operation meets an exponent beyond its context's range."""
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_NUMBERISH = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*"
                        r"|\s*[+-]?(nan|inf|infinity|snan)\s*", re.IGNORECASE)
"""Meant as a number but not in the plain form (→ 400, not the 422 of junk like "abc")."""
TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
"""The text rule as a JSON Schema pattern (ECMA-262 and Python ``re`` read it alike)."""
TEXT_CHAR = "[^\\u0000-\\u001f\\u007f-\\u009f]"
"""One character the text rule allows, for building patterns."""
TEXT_RULE = "no control characters (U+0000-U+001F, U+007F-U+009F) and no lone surrogates"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


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


def text_problem(value: str) -> str | None:
    """What breaks the text rule in ``value``, or ``None``."""
    if _CONTROL.search(value):
        return "must not contain control characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def check_text(name: str, value: str, message: str | None = None) -> str:
    """``value`` if it keeps the text rule, else 400 naming ``name`` (or ``message``)."""
    problem = text_problem(value)
    if problem is not None:
        raise bad_request(message or f"{name} {problem}")
    return value


def string(max_length: int | None = None, *, nullable: bool = False, description: str = "",
           route_rules: Mapping[str, Any] | None = None,
           bad_text: str | None = None) -> Prop:
    """A JSON string under the text rule (400) and at most ``max_length`` characters (422).
    ``route_rules`` are further JSON Schema constraints (``minLength``, ``maxLength``,
    ``pattern``) that the route enforces itself with its own 400 messages (the
    original's): declared here so the schema says what the server does. A ``pattern``
    given there replaces :data:`TEXT_PATTERN` and must exclude control characters too.
    ``bad_text`` replaces the text rule's message where the route has its own (it must
    name the field)."""
    schema: dict[str, Any] = {"type": "string", "pattern": TEXT_PATTERN}
    if max_length is not None:
        schema["maxLength"] = max_length
    schema.update(route_rules or {})
    rule = f"Text: {TEXT_RULE}."
    description = f"{description}. {rule}" if description else rule

    def parse(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ShapeError(f"{name}: invalid type, expected a string")
        check_text(name, value, bad_text)
        if max_length is not None and len(value) > max_length:
            raise ShapeError(f"{name}: longer than {max_length} characters")
        return value

    return Prop(schema, parse, nullable, description)


def decimal(*, nullable: bool = False, description: str = "",
            positive: bool = False) -> Prop:
    """A decimal given as a JSON string (preferred) or number; returned as ``Decimal``.
    ``positive``: the schema says it must be above zero (the route checks it itself)."""
    rule = ("A string of ASCII digits with an optional leading '-' and an optional '.' "
            "followed by digits (no '+', spaces, exponent, NaN or Infinity), or a JSON "
            "number; at most 10^15 in absolute value")
    schema: dict[str, Any] = {"type": ["string", "number"], "pattern": DECIMAL_PATTERN,
                              "minimum": -int(MAX_MAGNITUDE),
                              "maximum": int(MAX_MAGNITUDE),
                              "examples": ["0.5"]}
    if positive:
        del schema["minimum"]
        schema.update(pattern=POSITIVE_DECIMAL_PATTERN, exclusiveMinimum=0)
        rule += "; greater than zero"
    return Prop(schema, parse_decimal, nullable, f"{description}. {rule}" if description else rule)


def parse_decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ShapeError(f"{name}: invalid type, expected a decimal string")
    if isinstance(value, Decimal):  # a JSON fraction or exponent form (see ``loads``)
        return _bounded(name, value)
    text = check_text(name, value) if isinstance(value, str) else str(value)
    if not _PLAIN_DECIMAL.fullmatch(text):
        if _NUMBERISH.fullmatch(text):
            raise bad_request(f"{name} must be a plain decimal number: ASCII digits, an "
                              "optional leading '-' and '.' between digits (no '+', spaces, "
                              "exponent, NaN or Infinity)")
        raise ShapeError(f"{name}: invalid decimal {text[:40]!r}")
    return _bounded(name, Decimal(text))


def _bounded(name: str, number: Decimal) -> Decimal:
    # copy_abs and comparison are exact: abs() would round, and overflow on 1e999999999
    if number.copy_abs() > MAX_MAGNITUDE:
        raise bad_request(f"{name} is too large (at most 10^15)")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # JSON and the plain form have no NaN or Infinity
    if exponent < -MAX_PLACES:
        raise bad_request(f"{name} has too many decimal places")
    # 1e2 as 100, the same Decimal the plain form gives (``quantize`` is exact up here)
    return number.quantize(Decimal(1)) if exponent > 0 else number


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


def integer(minimum: int, maximum: int, *, description: str = "",
            route_rules: Mapping[str, Any] | None = None) -> Prop:
    """A JSON integer from ``minimum`` to ``maximum`` (else 422); ``route_rules`` as in
    :func:`string` (e.g. a narrower ``minimum``/``maximum`` the route refuses with its own
    400 messages)."""
    def parse(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ShapeError(f"{name}: invalid type, expected an integer")
        if not minimum <= value <= maximum:
            raise ShapeError(f"{name}: must be between {minimum} and {maximum}")
        return value

    return Prop({"type": "integer", "minimum": minimum, "maximum": maximum,
                 **(route_rules or {})}, parse, description=description)


# -- bodies ---------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads(raw: bytes) -> Any:
    """Parse JSON exactly: every fraction or exponent form as the ``Decimal`` it writes
    (``0.1`` is 0.1, ``1e-7`` is 0.0000001, never a float); NaN/Infinity literals are
    malformed."""
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
    """A query, path or header parameter: its OpenAPI entry and its parser (400 on bad
    input)."""

    name: str
    schema: dict[str, Any]
    parse: Callable[[str], Any]
    default: Any = None
    description: str = ""
    location: str = "query"
    required: bool = False
    """A query or header parameter the route needs (a path parameter always is)."""

    def get(self, request: Request) -> Any:
        source = {"path": request.path_params, "header": request.headers
                  }.get(self.location, request.query_params)
        raw = source.get(self.name)
        if raw is None:
            return self.default
        try:
            return self.parse(str(raw))
        except (ValueError, InvalidOperation) as exc:
            raise bad_request(f"Invalid {self.location} parameter `{self.name}`: {exc}"
                              ) from None

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.location,
                "required": self.required or self.location == "path",
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
               max_length: int = 200, *, route_rules: Mapping[str, Any] | None = None,
               required: bool = False) -> Param:
    """A string parameter under the text rule and ``max_length`` (400); ``route_rules`` as
    in :func:`string` (the route enforces them)."""
    def parse(text: str) -> str:
        problem = text_problem(text)
        if problem is not None:
            raise ValueError(problem)
        if len(text) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        return text

    schema: dict[str, Any] = {"type": "string", "pattern": TEXT_PATTERN,
                              "maxLength": max_length, **(route_rules or {})}
    rule = f"Text: {TEXT_RULE}."
    return Param(name, schema, parse, None, f"{description}. {rule}" if description else rule,
                 location, required)


def status_list_param(values: Sequence[str], description: str = "") -> Param:
    """``status``: one of ``values`` or a comma-separated list of them, in any case, with
    spaces around items and empty items ignored → the tuple of them (``()``: no filter);
    400 ``unknown status: X`` otherwise. The pattern says exactly that."""
    def parse(text: str) -> tuple[str, ...]:
        problem = text_problem(text)
        if problem is not None:
            raise ValueError(problem)
        wanted = tuple(s.strip(" ") for s in text.split(",") if s.strip(" "))
        for s in wanted:
            if not s.isascii() or s.lower() not in values:  # "\u212a".lower() is "k"
                raise bad_request(f"unknown status: {s[:40]}")
        return tuple(s.lower() for s in wanted)

    def any_case(value: str) -> str:
        return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in value)

    item = f" *({'|'.join(any_case(v) for v in values)})? *"
    listed = ", ".join(values)
    return Param("status", {"type": "string", "pattern": f"^{item}(,{item})*$"}, parse, (),
                 f"{description}A status or comma-separated list of: {listed}")


def uuid_param(name: str, description: str = "") -> Param:
    def parse(text: str) -> uuid.UUID:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise ValueError(f"not a UUID: {text[:40]!r}") from None

    return Param(name, {"type": "string", "format": "uuid"}, parse, None, description, "path")


MAX_IDEMPOTENCY_KEY = 200


def _idempotency_key(text: str) -> str:
    if not 0 < len(text) <= MAX_IDEMPOTENCY_KEY or not all("!" <= c <= "~" for c in text):
        raise ValueError(f"expected 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters")
    return text


IDEMPOTENCY_KEY = Param(
    "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY,
                        "pattern": "^[!-~]+$"},
    _idempotency_key, None,
    "Your key for this request: a retry with the same key returns the first outcome and "
    "never moves the money twice (1 to 200 visible ASCII characters)", "header")
"""The header that makes a money movement safe to retry (deposit, withdrawals)."""


PAGE = int_param("page", 1, 1, 1_000_000, "Page number, from 1")
LIMIT = int_param("limit", 20, 1, 1000, "Items per page (1..1000)")
ORDER = choice_param("order", ("asc", "desc"), "desc", "Sort by creation time: asc or desc")
