"""Signing in to the console, and who is signed in.

A sign-in is refused *before* any password is hashed when the client has tried too
often this minute (:data:`ATTEMPTS`), when it has failed across many accounts
(:data:`CLIENT_FAILURES`: it waits a minute after each further failure), or when this
account is locked for this client (:data:`ACCOUNT_FAILURES`: five wrong passwords from
one client lock the name for that client for 15 minutes). Locks are per (name, client),
so nobody elsewhere can lock an editor out, and they are kept for names with no
account too, so the answers never tell whether an account exists. Unknown names are
checked against a dummy hash, so the timing does not tell either.

With two-step sign-in on (:mod:`.totp`), a right password starts only a sign-in
awaiting its code (:data:`CODE_WAIT` to enter it, in its own cookie for the code page
alone); the code is checked by :func:`check_code` under the same limits, and a wrong
code counts towards the same lock as a wrong password. Only the right code starts the
session, and clears the failures: knowing the password does not reset the count.

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
from alerts.tokens import keyed_hash, load_secret_key, load_secret_keys
from alerts.web.admin import passwords, totp

log = logging.getLogger("alerts.web.admin")

COOKIE = "alerts_console"
COOKIE_PATH = "/admin"
LIFETIME = timedelta(hours=12)
IDLE = timedelta(hours=2)
#: A sign-in awaiting its two-step code: its cookie, and how long the code may take.
CODE_COOKIE = "alerts_console_code"
CODE_PATH = "/admin/login"
CODE_WAIT = timedelta(minutes=5)


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
    CODE_DUE = "code-due"  # the password was right; the two-step code is next
    CODE_REFUSED = "code-refused"  # a wrong code, or one already used
    CODE_EXPIRED = "code-expired"  # no sign-in awaits a code here (any more)


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
    if user.totp_on:
        return await asyncio.to_thread(_await_code, app, user, client)
    return await asyncio.to_thread(_record, app, name, client, Outcome.SIGNED_IN, user)


def _await_code(app: App, user: User, client: str) -> SignIn:
    """The password was right; the code is due. Failures are not cleared yet."""
    token = secrets.token_urlsafe(32)
    app.store.users.start_session(
        user,
        token_hash(token),
        secrets.token_urlsafe(32),
        app.now(),
        CODE_WAIT,
        awaiting_code=True,
    )
    app.store.audit.record(user.name, "sign-in-code-due", app.now(), target=f"client {client[:8]}")
    return SignIn(Outcome.CODE_DUE, token)


def awaiting_code(request: Request) -> Session | None:
    """The sign-in of this browser that awaits its two-step code, if any."""
    token = request.cookies.get(CODE_COOKIE)
    app: App = request.app.state.app
    if not token or len(token) >= 100:
        return None
    return app.store.users.session(token_hash(token), app.now(), CODE_WAIT, awaiting_code=True)


def check_code(app: App, request: Request, code: str) -> SignIn:
    """The second step: the code of the sign-in awaiting one in this browser. Refused,
    before any code is checked, as a password would be (slowed client, locked name,
    too many attempts); a wrong or reused code is a failure like a wrong password. Runs
    in a thread (database work only: a code costs no hash)."""
    pending = awaiting_code(request)
    client = client_hash(app, request)
    if pending is None:
        return SignIn(Outcome.CODE_EXPIRED)
    user, store, now = pending.user, app.store, app.now()
    refused, _ = _before_hashing(app, user.name, client)
    if refused is not None:
        if refused is Outcome.LOCKED:
            store.users.end_session(token_hash(request.cookies.get(CODE_COOKIE, "")))
        return _record(app, user.name, client, refused, None)
    step = None
    if user.totp_secret is not None:
        try:
            secret = totp.decrypt(
                load_secret_keys(app.config.security), user.name, user.totp_secret
            )
        except totp.SecretUnreadable as exc:
            log.error("console: %s", exc)
        else:
            step = totp.matching_step(secret, code, now)
    if step is None or not store.users.use_totp_step(user, step):
        result = _record(app, user.name, client, Outcome.CODE_REFUSED, None)
        if _locked(app, account_key(user.name, client)):
            store.users.end_session(token_hash(request.cookies.get(CODE_COOKIE, "")))
            return SignIn(Outcome.LOCKED)
        return result
    store.users.end_session(token_hash(request.cookies.get(CODE_COOKIE, "")))
    return _record(app, user.name, client, Outcome.SIGNED_IN, user)


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
        store.users.mark_signed_in(user, now)
        store.audit.record(
            user.name,
            "sign-in",
            now,
            target=f"client {client[:8]}",
            after={"two_step": user.totp_on},
        )
        log.info("console: %s signed in", user.name)
        return SignIn(Outcome.SIGNED_IN, token)
    if outcome in (Outcome.REFUSED, Outcome.CODE_REFUSED):
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


def set_code_cookie(app: App, response: Response, token: str) -> None:
    response.set_cookie(
        CODE_COOKIE,
        token,
        max_age=int(CODE_WAIT.total_seconds()),
        path=CODE_PATH,
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
