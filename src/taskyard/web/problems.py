"""Errors as RFC 9457 problem+json (API) or a plain page (panel): every failure of a
request is a 4xx or 503 that says what was wrong and, for bad input, which field.
Nothing reaches the client as a traceback."""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..errors import (
    InvalidInput,
    NotFound,
    StoreError,
    StoreUnavailable,
    TaskyardError,
    TransitionError,
    UserError,
)

log = logging.getLogger("taskyard.web")

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
          415: "Unsupported Media Type", 416: "Range Not Satisfiable", 422: "Unprocessable Content",
          429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class ApiError(Exception):
    """Raised by routes: becomes a problem with this status."""

    def __init__(self, status: int, detail: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.field = status, detail, field
        self.headers = headers or {}


def problem(request: Request, status: int, detail: str, field: str | None = None,
            headers: dict[str, str] | None = None) -> Response:
    title = TITLES.get(status, "Error")
    if not _wants_json(request):
        body = (f"<!doctype html><meta charset=utf-8><title>{status} {title}</title>"
                f"<link rel=stylesheet href=\"{html.escape(request.scope.get('root_path', ''))}"
                f"/static/panel.css\"><main class=error><h1>{status} {title}</h1>"
                f"<p>{html.escape(detail)}</p><p><a href=\"{html.escape(_root(request))}/\">"
                "Back to the panel</a></p></main>")
        return HTMLResponse(body, status_code=status, headers=headers)
    content: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                               "detail": detail}
    if field is not None:
        content["field"] = field
    return JSONResponse(content, status_code=status, headers=headers,
                        media_type="application/problem+json")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _wants_json(request: Request) -> bool:
    path = request.url.path[len(_root(request)):]
    if path.startswith(("/api/", "/health", "/metrics")):
        return True
    return "text/html" not in request.headers.get("accept", "")


def too_large(request: Request) -> Response:
    limit = request.scope.get(TOO_LARGE, 0)
    return problem(request, 413, f"the body is over {limit} bytes", "body")


def status_of(exc: TaskyardError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, TransitionError):
        return 409
    if isinstance(exc, InvalidInput | UserError):
        return 422
    if isinstance(exc, StoreUnavailable | StoreError):
        return 503
    return 500


#: A body that went over its limit as it was read (no Content-Length said so): the
#: request scope's key holding that limit.
TOO_LARGE = "taskyard.too_large"


class BodyTooLarge(Exception):
    """Raised while a body is read past its limit (see ``TOO_LARGE``)."""


#: What pydantic puts in an error's location for a member of a union (``str | int``:
#: ``signal.str``), or for a validator: not a field the client sent.
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|none|bytes|[a-z-]+\[.*\])$")


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for i, p in enumerate(loc)
             if not (i == 0 and p in ("body", "query", "path", "header"))
             and not (i > 0 and isinstance(p, str) and _UNION_MEMBER.match(p))]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return problem(request, exc.status, exc.detail, exc.field, exc.headers)

    async def on_taskyard(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TaskyardError)
        status = status_of(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return problem(request, status, str(exc), getattr(exc, "field", None))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first: dict[str, Any] = (dict(errors[0]) if errors
                                 else {"loc": ("body",), "msg": "invalid request"})
        if first.get("type") == "json_invalid":  # its location is a character offset
            why = (first.get("ctx") or {}).get("error", "invalid")
            at = first.get("loc", ("body", "?"))[-1]
            return problem(request, 400, f"the body is not JSON: {why} (at character {at})",
                           "body")
        field = _field_of(tuple(first.get("loc", ())))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        return problem(request, 422, f"{field}: {message}", field)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.scope.get(TOO_LARGE):  # FastAPI turns any failure to read into a 400
            return too_large(request)
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        field = "body" if exc.status_code == 400 and "body" in detail else None
        if exc.status_code == 404 and detail == "Not Found":  # no route has this path
            detail, field = f"nothing at {request.url.path}", "path"
        return problem(request, exc.status_code, detail, field, headers=dict(exc.headers or {}))

    async def on_too_large(request: Request, exc: Exception) -> Response:
        return too_large(request)

    async def on_too_deep(request: Request, exc: Exception) -> Response:
        return problem(request, 400, "JSON nested too deeply", "body")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem(request, 500, "internal error (see the web process's log)")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(TaskyardError, on_taskyard)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RecursionError, on_too_deep)
    app.add_exception_handler(BodyTooLarge, on_too_large)
    app.add_exception_handler(Exception, on_unexpected)
