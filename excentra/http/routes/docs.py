"""``/api-docs/openapi.json`` (generated from the routes) and ``/docs``, a Swagger UI whose
assets this server serves itself (from the ``swagger-ui-bundle`` package): no CDN, works
offline."""

from __future__ import annotations

from importlib.metadata import version

import swagger_ui_bundle
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from excentra.http.openapi import document

ASSETS = "/docs/assets"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Excentra API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "/api-docs/openapi.json", dom_id: "#ui",
  deepLinking: true, withCredentials: true}});
</script></body></html>
"""


async def openapi_json(request: Request) -> Response:
    cached = getattr(request.app.state, "openapi", None)
    if cached is None:
        cached = request.app.state.openapi = document(
            request.app.routes, version=version("excentra"),
            settings=request.state.services.settings)
    return JSONResponse(cached)


async def docs_page(_request: Request) -> Response:
    return HTMLResponse(_PAGE.format(assets=ASSETS))


routes: list[BaseRoute] = [
    Route("/api-docs/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs_page, methods=["GET"]),
    Mount(ASSETS, app=StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
          name="docs-assets"),
]
