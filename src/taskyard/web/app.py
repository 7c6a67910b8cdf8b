"""The web application: the HTTP API under /api/v1, the panel, /health and /metrics.

One more client of ``ops`` and the store, like the CLI: it never signals a task
(controls are requests the owning server applies). ``create_app`` builds it for a
home's settings; ``taskyard web`` serves it with uvicorn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..store import open_store
from ..store.sqlserver import SqlServerStore
from . import problems
from .auth import Auth
from .deps import GatedRoute, Viewer
from .inline import per_thread

STATIC = Path(__file__).parent / "static"
#: Bodies larger than this are refused (413) before they are read in full.
MAX_BODY = 2 * 1024 * 1024
MAX_STDIN_BODY = 64 * 1024 * 1024 + 1024
MAX_BATCH_BODY = 16 * 1024 * 1024  #: a batch submit's: 1,000 specs of 16 KiB
#: No inline script or style anywhere: everything the page runs comes from /static.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
       " connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none';"
       " form-action 'self'; frame-ancestors 'none'")
#: Swagger UI (the API docs page only) sets styles inline.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class Guard:
    """ASGI middleware: the root path a reverse proxy serves us under (with or without
    the proxy stripping it), bodies capped before they are read, and security headers
    on every answer."""

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app, self.root_path = app, root_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["root_path"] = self.root_path
        limit = _body_limit(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _too_large(scope, receive, send, limit)
            return
        seen = 0

        async def capped_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    scope[problems.TOO_LARGE] = limit  # however the reader words it
                    raise problems.BodyTooLarge()
            return message

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                policy = DOCS_CSP if scope["path"].endswith("/api/v1/docs") else CSP
                headers += [(b"content-security-policy", policy.encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"),
                            (b"x-frame-options", b"DENY")]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, capped_receive, secured_send)
        except problems.BodyTooLarge:
            await _too_large(scope, receive, send, limit)


def _body_limit(path: str) -> int:
    """The largest body a request to ``path`` may send."""
    if path.endswith("/stdin"):
        return MAX_STDIN_BODY
    return MAX_BATCH_BODY if path.endswith("/api/v1/tasks/batch") else MAX_BODY


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = JSONResponse({"type": "about:blank", "title": "Content Too Large", "status": 413,
                             "detail": f"the body is over {limit} bytes", "field": "body"},
                            status_code=413, media_type="application/problem+json")
    await response(scope, receive, send)


def create_app(settings: Settings, *, store: SqlServerStore | None = None) -> FastAPI:
    """The application for ``settings``' store (opened here unless given)."""
    from . import (
        api_admin,
        api_batch,
        api_messages,
        api_output,
        api_stats,
        api_tasks,
        monitor,
        panel,
        panel_actions,
    )

    app = FastAPI(title="taskyard", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None, description=__doc__)
    app.router.route_class = GatedRoute  # the docs' routes: token first
    app.state.settings = settings
    opened = store or open_store(settings.store_location, synchronous=settings.synchronous,
                                 application_name="taskyard-web")
    app.state.store, app.state.inline = per_thread(opened, settings.synchronous)
    app.state.auth = Auth(app.state.store,
                          app.state.inline.store if app.state.inline is not None else None)
    app.state.events = monitor.EventMetrics()
    problems.install(app)
    app.include_router(monitor.router)
    app.include_router(api_tasks.router)
    app.include_router(api_batch.router)
    app.include_router(api_output.router)
    app.include_router(api_messages.router)
    app.include_router(api_admin.router)
    app.include_router(api_stats.router)
    _docs(app)
    app.include_router(panel.router)
    app.include_router(panel_actions.router)

    async def to_login(request: Request, exc: Exception) -> Response:
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/login", status_code=303)

    app.add_exception_handler(panel.LoginRequired, to_login)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def asgi(settings: Settings, *, root_path: str = "",
         store: SqlServerStore | None = None) -> ASGIApp:
    """What uvicorn serves: the application behind the Guard (root path, body caps,
    security headers)."""
    return Guard(create_app(settings, store=store), root_path.rstrip("/"))


PROBLEM = {"description": "a problem (RFC 9457): what was wrong and, for bad input, the"
                          " field (401 without a valid token, 403 when its role or tenant"
                          " may not, 404, 409 in the wrong state, 413, 422...)",
           "content": {"application/problem+json": {
               "schema": {"$ref": "#/components/schemas/Problem"}}}}


def openapi_schema(app: FastAPI, root_path: str = "") -> dict[str, Any]:
    """The OpenAPI document as the API answers: every error is a problem+json (FastAPI
    documents a 422 with its own shape, which no route answers), every route but
    /health needs a bearer token."""
    from .schemas import Problem

    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes, servers=[{"url": root_path}] if root_path else None)
    components = schema.setdefault("components", {})
    found = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        found.pop(unused, None)
    found["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    schema["security"] = [{"bearer": []}]
    for item in schema["paths"].values():
        for operation in item.values():
            operation["responses"].pop("422", None)
            operation["responses"]["default"] = PROBLEM
    health = schema["paths"]["/health"]["get"]
    health["security"] = []
    health["responses"]["503"] = {"description": "the store does not answer (saying why)",
                                  "content": {"application/json": {"schema": {
                                      "type": "object"}}}}
    health["responses"].pop("default")
    return schema


def _docs(app: FastAPI) -> None:
    schema: dict[str, Any] = {}

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    def openapi(request: Request, who: Viewer) -> JSONResponse:
        if not schema:
            schema.update(openapi_schema(app, request.scope.get("root_path", "")))
        return JSONResponse(schema)

    @app.get("/api/v1/docs", include_in_schema=False)
    def docs(request: Request, who: Viewer) -> Response:
        root = request.scope.get("root_path", "")
        return HTMLResponse(
            "<!doctype html><html><head><meta charset=utf-8><title>taskyard API</title>"
            f"<link rel=stylesheet href=\"{root}/static/swagger-ui.css\"></head><body>"
            f"<div id=swagger-ui data-url=\"{root}/api/v1/openapi.json\"></div>"
            f"<script src=\"{root}/static/swagger-ui-bundle.js\"></script>"
            f"<script src=\"{root}/static/docs.js\"></script></body></html>")
