"""The OpenAPI 3.1 document, generated from the routes: every endpoint function carries an
``Operation`` (set by ``@operation``), request bodies are their ``fields.Body`` and named
response schemas live in ``SCHEMAS`` (registered with ``schema()`` next to the code that
produces them)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from starlette.routing import BaseRoute, Route

from excentra.http.fields import Body, Param

if TYPE_CHECKING:
    from excentra.http.config import Settings

Access = Literal["public", "user", "admin"]
F = TypeVar("F", bound=Callable[..., Any])

SCHEMAS: dict[str, dict[str, Any]] = {}
"""Named response/component schemas, ``#/components/schemas/<name>``."""

ERROR = "Error"
_DESCRIPTIONS = {
    200: "OK", 201: "Created", 204: "No content", 400: "Invalid request",
    401: "Not authenticated", 403: "Forbidden", 404: "Not found", 409: "Conflict",
    413: "Request body too large", 415: "Unsupported media type",
    422: "Request does not fit the schema, or cannot be processed", 429: "Rate limited",
    503: "Temporarily unavailable",
}


_CHALLENGE = {"required": True, "schema": {"type": "string"},
              "description": "RFC 6750: `Bearer` when no bearer token was sent; "
                             "`Bearer error=\"invalid_token\", error_description=\"...\"` "
                             "when it is expired or invalid (`invalid_request` when the "
                             "header is malformed)"}


def schema(name: str, definition: dict[str, Any]) -> str:
    """Register a component schema; returns its name for ``responses``."""
    SCHEMAS[name] = definition
    return name


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def array_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": ref(name)}


@dataclass(frozen=True)
class Media:
    """A response body that is not JSON (e.g. Prometheus text)."""

    media_type: str
    schema: dict[str, Any]


Text: TypeAlias = "str | Callable[[Settings], str]"
"""A description, fixed or written from the server's settings (e.g. its configured caps)."""


@dataclass(frozen=True)
class Reply:
    """A response with its own description (else the status's usual one)."""

    body: str | dict[str, Any] | Media | None
    description: Text


ResponseBody: TypeAlias = str | dict[str, Any] | Media | Reply | None


schema(ERROR, {"type": "object", "required": ["error"],
               "properties": {"error": {"type": "string"}}})


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: where an id in this operation's success response can be used, so
    a client (or a stateful test) can follow it."""

    operation_id: str
    parameters: Mapping[str, str]
    """The target's parameter → a runtime expression, e.g. ``$response.body#/id``."""

    def spec(self) -> dict[str, Any]:
        return {"operationId": self.operation_id, "parameters": dict(self.parameters)}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    tag: str
    summary: str
    access: Access = "public"
    body: Body | None = None
    params: tuple[Param, ...] = ()
    responses: Mapping[int, ResponseBody] = field(default_factory=dict)
    """Status → a schema name, an inline JSON schema, ``Media``, a ``Reply``, or ``None``
    (no body)."""
    rate_limited: bool = False
    description: Text = ""
    links: Mapping[str, Link] = field(default_factory=dict)
    """Name → link, shown on the success (lowest 2xx) response."""


def operation(operation_id: str, tag: str, summary: str, *, access: Access = "public",
              body: Body | None = None, params: Iterable[Param] = (),
              responses: Mapping[int, ResponseBody] | None = None,
              rate_limited: bool = False, description: Text = "",
              links: Mapping[str, Link] | None = None) -> Callable[[F], F]:
    """Attach the OpenAPI description of an endpoint to its function."""
    op = Operation(operation_id, tag, summary, access, body, tuple(params),
                   dict(responses or {}), rate_limited, description, dict(links or {}))

    def attach(fn: F) -> F:
        fn.__openapi__ = op  # type: ignore[attr-defined]
        return fn

    return attach


def _errors(op: Operation) -> dict[int, ResponseBody]:
    implied: dict[int, ResponseBody] = {}
    if op.params or op.body:
        implied[400] = ERROR
    if op.body:
        implied.update({413: ERROR, 415: ERROR, 422: ERROR})
    if op.access != "public":
        implied[401] = ERROR
    if op.access == "admin":
        implied[403] = ERROR
    if op.rate_limited:
        implied[429] = ERROR
    return implied


def _text(text: Text, settings: Settings) -> str:
    return text if isinstance(text, str) else text(settings)


def _response(status: int, body: ResponseBody, settings: Settings) -> dict[str, Any]:
    description = _DESCRIPTIONS.get(status, "Response")
    if isinstance(body, Reply):
        description, body = _text(body.description, settings), body.body
    out: dict[str, Any] = {"description": description}
    if isinstance(body, Media):
        out["content"] = {body.media_type: {"schema": body.schema}}
    elif body is not None:
        content = ref(body) if isinstance(body, str) else body
        out["content"] = {"application/json": {"schema": content}}
    return out


def _path_of(route: Route) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)


def _operation_doc(op: Operation, settings: Settings) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "tags": [op.tag],
                           "summary": op.summary}
    if op.description:
        doc["description"] = _text(op.description, settings)
    if op.params:
        doc["parameters"] = [p.spec() for p in op.params]
    if op.body is not None:
        SCHEMAS.setdefault(op.body.name, op.body.json_schema())
        doc["requestBody"] = {"required": not op.body.optional_body,
                              "content": {"application/json": {"schema": ref(op.body.name)}}}
    if op.access != "public":
        doc["security"] = [{"bearer_auth": []}]
    responses = {**_errors(op), **op.responses}
    doc["responses"] = {str(s): _response(s, b, settings)
                        for s, b in sorted(responses.items())}
    if op.access != "public":
        doc["responses"]["401"]["headers"] = {"WWW-Authenticate": _CHALLENGE}
    if op.links:
        success = min(s for s in op.responses if 200 <= s < 300)
        doc["responses"][str(success)]["links"] = {name: link.spec()
                                                   for name, link in op.links.items()}
    return doc


def document(routes: Iterable[BaseRoute], *, version: str, settings: Settings
             ) -> dict[str, Any]:
    """The document for these routes; ``settings`` fill the descriptions that depend on
    configuration."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        op: Operation | None = getattr(route.endpoint, "__openapi__", None)
        if op is None:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(_path_of(route), {})[method.lower()] = _operation_doc(op,
                                                                                   settings)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Excentra", "version": version,
                 "description": "Centralized crypto-exchange API (the Python Excentra).",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "paths": paths,
        "components": {"schemas": dict(sorted(SCHEMAS.items())),
                       "securitySchemes": {"bearer_auth": {"type": "http",
                                                           "scheme": "bearer",
                                                           "bearerFormat": "JWT"}}},
    }
