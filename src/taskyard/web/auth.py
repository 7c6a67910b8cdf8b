"""Who is asking, and may they: a bearer token (programs) or the panel's session
cookie (browsers); roles; tenants; CSRF and origin checks for cookie sessions; and
wrong secrets slowed down per client."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from .. import access
from ..errors import NotFound
from ..store.access import Token
from ..store.sqlserver import SqlServerStore
from .problems import ApiError

T = TypeVar("T")

SESSION_COOKIE = "taskyard_session"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Principal(NamedTuple):
    token: Token
    csrf: str | None  #: the session's CSRF token when authenticated by cookie

    @property
    def role(self) -> str:
        return self.token.role

    @property
    def tenant(self) -> str | None:
        return self.token.tenant

    @property
    def by(self) -> str:
        """Who acted, for event rows."""
        return f"token:{self.token.name}"

    def sees(self, tenant: str) -> bool:
        return self.token.tenant is None or self.token.tenant == tenant

    def require_visible(self, tenant: str, what: str, field: str = "id") -> None:
        """Another tenant's object is not found (its existence is not revealed: the
        same problem as for an object that does not exist)."""
        if not self.sees(tenant):
            raise NotFound(f"no {what}", field=field)

    def require_global(self) -> None:
        if self.token.tenant is not None:
            raise ApiError(403, "a tenant's token cannot do this: it is for tokens of every"
                           " tenant")


class Throttle:
    """Wrong secrets from one client wait longer and longer (0.25 s doubling, at most
    8 s); past 20 in a row its wrong secrets are refused at once (429) for a while.
    Forgotten after 15 min without a failure."""

    def __init__(self) -> None:
        self.failures: dict[str, tuple[int, float]] = {}

    def _count(self, client: str, now: float) -> int:
        count, last = self.failures.get(client, (0, 0.0))
        return count if now - last < 900 else 0

    def check(self, client: str) -> None:
        now = time.monotonic()
        count = self._count(client, now)
        if count >= 20:
            raise ApiError(429, "too many wrong tokens from this client; try again later",
                           headers={"Retry-After": "60"})

    async def failed(self, client: str) -> None:
        now = time.monotonic()
        count = self._count(client, now) + 1
        self.failures[client] = (count, now)
        if len(self.failures) > 10_000:  # a flood of clients: keep the recent ones
            cutoff = now - 900
            self.failures = {k: v for k, v in self.failures.items() if v[1] > cutoff}
        await asyncio.sleep(min(8.0, 0.25 * 2 ** (count - 1)))

    def succeeded(self, client: str) -> None:
        self.failures.pop(client, None)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"


class Auth:
    """Resolves the principal of a request (one store read), throttling wrong secrets
    and recording a token's use at most once a minute."""

    def __init__(self, store: SqlServerStore, inline: SqlServerStore | None = None) -> None:
        self.store = store
        #: a connection of its own for the lookups, used on the event loop's thread: an
        #: indexed read of a local SQLite file takes microseconds, less than a trip
        #: through the thread pool (a third of a submit's time over HTTP went to those
        #: trips), and, on its own connection, never waits behind another request's query
        self.inline = inline
        self.throttle = Throttle()
        self.touched: dict[int, float] = {}

    async def _lookup(self, find: Callable[[SqlServerStore, str], T], secret: str) -> T:
        if self.inline is not None:
            return find(self.inline, secret)
        return await run_in_threadpool(find, self.store, secret)

    async def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        cookie = request.cookies.get(SESSION_COOKIE)
        client = client_of(request)
        if header is not None:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise ApiError(401, "send Authorization: Bearer TOKEN",
                               headers={"WWW-Authenticate": "Bearer"})
            token = await self._lookup(access.authenticate, secret.strip())
            if token is None:
                # a valid token is always served: throttling it would let anyone sharing
                # its address (every client behind one reverse proxy) lock it out
                self.throttle.check(client)
                await self.throttle.failed(client)
                raise ApiError(401, "invalid, revoked or expired token",
                               headers={"WWW-Authenticate": "Bearer"})
            self.throttle.succeeded(client)
            await self._touch(token)
            return Principal(token, None)
        if cookie:
            session = await self._lookup(access.session_of, cookie)
            if session is not None:
                return Principal(session.token, session.csrf)
            raise ApiError(401, "your panel session has ended: log in again")
        raise ApiError(401, "a token is required (Authorization: Bearer TOKEN)",
                       headers={"WWW-Authenticate": "Bearer"})

    async def _touch(self, token: Token) -> None:
        now = time.time()
        if now - self.touched.get(token.id, 0.0) > 60:
            self.touched[token.id] = now
            await run_in_threadpool(self.store.touch_token, token.id, now)


def check_csrf(request: Request, principal: Principal, sent: str | None) -> None:
    """A state change by a cookie session must come from the panel's own pages: same
    origin (Sec-Fetch-Site, else Origin), with the session's CSRF token."""
    if principal.csrf is None:
        return  # a bearer token: no ambient credential to abuse
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise ApiError(403, f"cross-site request refused ({site})")
    origin = request.headers.get("origin")
    if site is None and origin is not None and origin != own_origin(request):
        raise ApiError(403, "cross-origin request refused")
    if sent is None or not hmac.compare_digest(sent, principal.csrf):
        raise ApiError(403, "missing or wrong CSRF token (reload the page)")


def own_origin(request: Request) -> str:
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{host}"


def require_role(principal: Principal, role: str) -> None:
    if not access.role_at_least(principal.role, role):
        raise ApiError(403, f"this needs the {role} role (the token is {principal.role})")
