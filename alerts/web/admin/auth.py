"""Signing in to the console, and who is signed in.

A sign-in is refused *before* any password is hashed when the client has tried too
often this minute (:data:`ATTEMPTS`), when it has failed across many accounts
(:data:`CLIENT_FAILURES`: it waits a minute after each further failure), or when this
account is locked for this client (:data:`ACCOUNT_FAILURES`: five wrong passwords from
one client lock the name for that client for 15 minutes). Locks are per (name, client),
so nobody elsewhere can lock an editor out, and they are kept for names with no
account too, so the answers never tell whether an account exists. Unknown names are
checked against a dummy hash, so the timing does not tell either.

Signing in starts a fresh session (a random token in an HttpOnly, SameSite=Strict
cookie, Secure on https; the database keeps its SHA-256 only). A session ends at sign
out, after :data:`IDLE` without use, :data:`LIFETIME` after it began, or when its user
is removed or given a new password.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from alerts.app import App
from alerts.store.limits import Limit
from alerts.store.users import Session, User
from alerts.tokens import keyed_hash, load_secret_key
from alerts.web.admin import passwords

log = logging.getLogger("alerts.web.admin")

COOKIE = "alerts_console"
COOKIE_PATH = "/admin"
LIFETIME = timedelta(hours=12)
IDLE = timedelta(hours=2)


@dataclass(frozen=True)
class FailureRule:
    limit: int
    window: timedelta
    lock: timedelta


#: Five wrong passwords for one name from one client lock it there for 15 minutes.
ACCOUNT_FAILURES = FailureRule(limit=5, window=timedelta(minutes=15), lock=timedelta(minutes=15))
#: A client that failed 20 times in an hour, whatever the names, waits a minute after each further failure.
CLIENT_FAILURES = FailureRule(limit=20, window=timedelta(hours=1), lock=timedelta(minutes=1))
#: Attempts of any kind from one client, counted before any hashing.
ATTEMPTS = Limit(gap=timedelta(0), per_window=10, window=timedelta(minutes=1))


class Outcome(enum.StrEnum):
    SIGNED_IN = "signed-in"
    REFUSED = "refused"  # a wrong password, or no such account: the same answer
    LOCKED = "locked"  # this name, from this client, for a while
    SLOWED = "slowed"  # this client, whatever the name
    BUSY = "busy"  # too many checks already waiting


@dataclass(frozen=True)
class SignIn:
    outcome: Outcome
    token: str | None = None


def client_hash(app: App, request: Request) -> str:
    address = request.client.host if request.client else "unknown"
    return keyed_hash(load_secret_key(app.config.security), "console-client:" + address)[:32]


def account_key(name: str, client: str) -> str:
    return f"account:{name}:{client}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _locked(app: App, key: str) -> bool:
    failures = app.store.users.failures(key)
    return bool(failures and failures.locked_until and failures.locked_until > app.now())


async def sign_in(app: App, request: Request, name: str, password: str) -> SignIn:
    """Check a name and password from this request's client; start a session when right.
    Every outcome is logged and audited (the name as typed, never the password). The
    database work runs in threads and the hash in the pool: the event loop never waits."""
    name = name.strip()[:64]
    client = client_hash(app, request)
    refused, user = await asyncio.to_thread(_before_hashing, app, name, client)
    if refused is not None:
        return await asyncio.to_thread(_record, app, name, client, refused, None)
    try:
        right, rehash = await passwords.verify_in_pool(
            user.password_hash if user else None, password
        )
    except passwords.Busy:
        return await asyncio.to_thread(_record, app, name, client, Outcome.BUSY, None)
    if not (right and user):
        return await asyncio.to_thread(_record, app, name, client, Outcome.REFUSED, None)
    if rehash:
        new_hash = await passwords.hash_in_pool(password)
        await asyncio.to_thread(
            app.store.users.set_password, user.name, new_hash, app.now(), keep_sessions=True
        )
    return await asyncio.to_thread(_record, app, name, client, Outcome.SIGNED_IN, user)


def _before_hashing(app: App, name: str, client: str) -> tuple[Outcome | None, User | None]:
    """Refusals that cost no hash, then the account (None: the dummy hash is checked)."""
    if _locked(app, "client:" + client):
        return Outcome.SLOWED, None
    if _locked(app, account_key(name, client)):
        return Outcome.LOCKED, None
    if not app.store.limits.take("console-login:" + client, ATTEMPTS, app.now()):
        return Outcome.SLOWED, None
    return None, app.store.users.find(name) if name else None


def _record(app: App, name: str, client: str, outcome: Outcome, user: User | None) -> SignIn:
    """Count a failure or start the session; audit and log either way."""
    store, now = app.store, app.now()
    account = account_key(name, client)
    who = f"{name} from client {client[:8]}"
    if outcome is Outcome.SIGNED_IN and user is not None:
        store.users.clear_failures(account)
        token = secrets.token_urlsafe(32)
        store.users.start_session(user, token_hash(token), secrets.token_urlsafe(32), now, LIFETIME)
        store.audit.record(user.name, "sign-in", now, target=f"client {client[:8]}")
        log.info("console: %s signed in", user.name)
        return SignIn(Outcome.SIGNED_IN, token)
    if outcome is Outcome.REFUSED:
        rule = ACCOUNT_FAILURES
        failures = store.users.record_failure(
            account, now, window=rule.window, limit=rule.limit, lock=rule.lock
        )
        rule = CLIENT_FAILURES
        store.users.record_failure(
            "client:" + client, now, window=rule.window, limit=rule.limit, lock=rule.lock
        )
        if failures.locked_until is not None:
            store.audit.record("-", "account-locked", now, target=who)
    store.audit.record("-", f"sign-in-{outcome.value}", now, target=who)
    log.warning("console: sign-in as %r from client %s %s", name, client[:8], outcome.value)
    return SignIn(outcome)


def current_session(request: Request) -> Session | None:
    """The signed-in session of this request, looked up once per request."""
    if "console_session" not in request.scope:
        token = request.cookies.get(COOKIE)
        app: App = request.app.state.app
        found = (
            app.store.users.session(token_hash(token), app.now(), IDLE)
            if token and len(token) < 100
            else None
        )
        request.scope["console_session"] = found
    session: Session | None = request.scope["console_session"]
    return session


def set_session_cookie(app: App, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=app.config.site.base_url.startswith("https://"),
    )


def sign_out(request: Request, response: Response) -> None:
    token = request.cookies.get(COOKIE)
    if token:
        app: App = request.app.state.app
        app.store.users.end_session(token_hash(token))
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
