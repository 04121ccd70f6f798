"""``/docs``: Swagger UI served from the installed ``swagger-ui-py`` package, not a CDN.

FastAPI's own docs page loads Swagger UI from jsDelivr, which an offline installation cannot reach.
The ``swagger-ui-py`` wheel ships Swagger UI 5 (which reads OpenAPI 3.1, what FastAPI writes); only
its static files are used, found without importing the package (which imports web frameworks).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def swagger_assets() -> Path | None:
    """The folder holding ``swagger-ui-bundle.js`` and ``swagger-ui.css``, if the package is installed."""
    spec = importlib.util.find_spec("swagger_ui")
    for location in (spec.submodule_search_locations or []) if spec else []:
        static = Path(location) / "static"
        if (static / "swagger-ui-bundle.js").is_file() and (static / "swagger-ui.css").is_file():
            return static
    return None


def add_docs(app: FastAPI, title: str) -> None:
    """``GET /docs`` with local assets (the CDN ones only when the package is missing)."""
    static = swagger_assets()
    urls: dict[str, str] = {}
    if static is not None:
        app.mount(ASSETS, StaticFiles(directory=static), name="docs-assets")
        urls = {"swagger_js_url": f"{ASSETS}/swagger-ui-bundle.js", "swagger_css_url": f"{ASSETS}/swagger-ui.css",
                "swagger_favicon_url": f"{ASSETS}/favicon-32x32.png"}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} API", **urls)
