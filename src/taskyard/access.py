"""Tokens, roles, tenants and panel sessions: who may do what over HTTP.

Shared by the CLI (``taskyard token ...``, ``taskyard web login-url``), the
Python API and the web package. Secrets are made here, shown once, and only
their SHA-256 is stored (tokens are 256 random bits, so a fast hash is enough:
nothing to brute-force).

Roles nest: ``viewer`` reads; ``operator`` also submits and steers tasks;
``admin`` also manages queues, schedules, tenants, tokens and servers. A token
with a tenant sees and touches that tenant's tasks only.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from . import validate
from .errors import InvalidInput
from .store.access import Session, Token
from .store.sqlserver import SqlServerStore as Store

ROLES = ("viewer", "operator", "admin")
TOKEN_PREFIX = "tyk_"  #: API tokens look like tyk_<43 characters>
SESSION_TTL = 12 * 3600.0  #: a panel session lasts this long at most
TICKET_TTL = 600.0  #: a login link is valid this long, once


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def check_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    return str(role)


def create_token(store: Store, role: str, *, tenant: str | None = None,
                 name: str | None = None, expires_in: float | None = None,
                 by: str) -> tuple[Token, str]:
    """A new token and its secret (shown once: only its hash is kept)."""
    role = check_role(role)
    name = validate.check_name(name, "name") or f"{role}-{secrets.token_hex(3)}"
    tenant = validate.check_name(tenant, "tenant")
    if expires_in is not None and not 0 < expires_in < 100 * 365 * 86400:
        raise InvalidInput("expires must be a positive duration (30d, 12h...)",
                           field="expires")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = time.time() + expires_in if expires_in is not None else None
    token = store.add_token(name, role, tenant, digest(secret), expires_at, by=by)
    return token, secret


def authenticate(store: Store, secret: str) -> Token | None:
    """The valid (not revoked, not expired) token with this secret, or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = store.token_by_secret(digest(secret))
    return token if token is not None and token.valid(time.time()) else None


def login_ticket(store: Store, *, by: str) -> str:
    """A one-time login secret for the panel (``/login?ticket=...``): valid for
    TICKET_TTL, single use, opening an admin session of at most SESSION_TTL. Whoever
    can write the home's store may make one (as for the CLI, file permissions are the
    boundary); the session is bound to a login token of its own, which `token ls`
    lists and `token revoke` ends."""
    now = time.time()
    store.prune_access(now)
    token = store.add_token(f"login-{secrets.token_hex(4)}", "admin", None,
                            digest(secrets.token_urlsafe(32)), now + SESSION_TTL, by=by,
                            login=True)
    ticket = secrets.token_urlsafe(32)
    store.add_ticket(digest(ticket), token.id, now + TICKET_TTL)
    return ticket


def redeem_ticket(store: Store, ticket: str) -> Token | None:
    """The token a valid, unused ticket opens a session for (the ticket is used up)."""
    if not ticket or len(ticket) > 200:
        return None
    token_id = store.redeem_ticket(digest(ticket), time.time())
    if token_id is None:
        return None
    token = store.find_token(token_id)
    return token if token.valid(time.time()) else None


def open_session(store: Store, token: Token) -> tuple[str, str, float]:
    """A new panel session bound to ``token``: (cookie secret, CSRF token, expiry)."""
    now = time.time()
    expires_at = min(now + SESSION_TTL, token.expires_at or float("inf"))
    session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    store.add_session(digest(session), token.id, csrf, expires_at)
    return session, csrf, expires_at


def session_of(store: Store, cookie: str) -> Session | None:
    """The live session of a cookie: not expired, its token neither revoked nor expired."""
    if not cookie or len(cookie) > 200:
        return None
    found = store.session(digest(cookie))
    now = time.time()
    if found is None or found.expires_at <= now or not found.token.valid(now):
        return None
    return found


def end_session(store: Store, cookie: str) -> None:
    store.end_session(digest(cookie))
