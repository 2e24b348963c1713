"""The admin's user management: who may sign in (role, two-step sign-in, locked, last
sign-in), add a user, and for one user change the role, set a new password, lift the
locks, reset two-step sign-in, or remove them.

A new user gets a first password the admin types twice and hands over by phone or in
person; they change it under *Your account*. (Not a set-password link: the console
keeps no staff mail addresses and sends staff no mail, and a link would be a bearer
credential left in a mailbox or chat.)

Nobody removes or demotes themselves here, and nobody removes or demotes the last admin
(the store refuses that too, in the same transaction); the page says why. Removing a
user or setting their password ends their sign-ins at once. Every change is audited:
who, what, when, before and after; never a password or a secret.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from alerts.store.users import LastAdmin, Role, Session, User, UserExists, name_problem
from alerts.web.admin import passwords
from alerts.web.admin.guard import PREFIX, console_render, console_route, form_of
from alerts.web.pages import web_app

ADMIN = Role.ADMIN
USERS = PREFIX + "/users"

DONE = {
    "added": "Added {name}. Give them their first password by phone or in person.",
    "role": "{name} is now an {role}.",
    "password": "New password set for {name}; their sign-ins have ended.",
    "unlock": "Lifted the sign-in locks on {name}.",
    "totp-reset": "Two-step sign-in is off for {name}; they can set it up again.",
    "removed": "Removed {name}; their sign-ins have ended.",
}


def routes() -> list[Route]:
    return [
        console_route(USERS, users_page, role=ADMIN, name="admin_users"),
        console_route(
            USERS + "/new", add_page, role=ADMIN, methods=["GET", "POST"], name="admin_user_add"
        ),
        console_route(
            USERS + "/{user_id:int}",
            user_page,
            role=ADMIN,
            methods=["GET", "POST"],
            name="admin_user",
        ),
    ]


def _done(request: Request) -> str | None:
    template = DONE.get(request.query_params.get("done", ""))
    if template is None:
        return None
    role = request.query_params.get("role", "")
    return template.format(
        name=request.query_params.get("name", "")[:64],
        role=role if role in {r.value for r in Role} else "",
    )


async def users_page(request: Request, session: Session) -> Response:
    app = web_app(request)

    def load() -> tuple[list[User], set[str]]:
        return app.store.users.list(), app.store.users.locked_names(app.now())

    people, locked = await asyncio.to_thread(load)
    return console_render(
        request,
        session,
        "admin/users.html",
        {"people": people, "locked": locked, "done": _done(request)},
    )


async def add_page(request: Request, session: Session) -> Response:
    app = web_app(request)
    context: dict[str, Any] = {"name": "", "role": Role.EDITOR.value, "errors": {}}
    if request.method in ("GET", "HEAD"):
        return _add_form(request, session, context)
    form = form_of(request)
    name = str(form.get("name", "")).strip()[:100]
    role = str(form.get("role", ""))
    context.update(name=name, role=role)
    errors: dict[str, str] = {}
    if problem := name_problem(name):
        errors["name"] = f"Choose another name: {problem}."
    if role not in {r.value for r in Role}:
        errors["role"] = "Choose editor or admin."
    if problem := passwords.problem(str(form.get("password", "")), str(form.get("again", ""))):
        errors["password"] = problem
    if not errors:
        try:
            hashed = await passwords.hash_in_pool(str(form.get("password")))
        except passwords.Busy:
            errors["password"] = "The console is busy. Wait a few seconds, then try again."
    if errors:
        return _add_form(request, session, {**context, "errors": errors}, status=400)
    try:
        await asyncio.to_thread(app.store.users.add, name, Role(role), hashed, app.now())
    except UserExists:
        errors["name"] = f"There is already a user called {name}. Choose another name."
        return _add_form(request, session, {**context, "errors": errors}, status=400)
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "user-add",
        app.now(),
        target=f"user {name}",
        after={"role": role},
    )
    return RedirectResponse(_back(name, "added"), status_code=303)


def _add_form(
    request: Request, session: Session, context: dict[str, Any], *, status: int = 200
) -> Response:
    return console_render(
        request,
        session,
        "admin/user_add.html",
        {**context, "min_length": passwords.MIN_LENGTH},
        status=status,
    )


def _back(name: str, done: str, role: str = "") -> str:
    query = {"done": done, "name": name, **({"role": role} if role else {})}
    return f"{USERS}?{urlencode(query)}"


async def user_page(request: Request, session: Session) -> Response:
    app = web_app(request)
    user = await asyncio.to_thread(app.store.users.by_id, request.path_params["user_id"])
    if user is None:
        return console_render(
            request,
            session,
            "admin/refused.html",
            {"title": "No such user", "hint": "Go back to the list of users."},
            status=404,
        )
    if request.method in ("GET", "HEAD"):
        return await _user_form(request, session, user)
    action = str(form_of(request).get("action", ""))
    handler = ACTIONS.get(action)
    if handler is None:
        return await _user_form(request, session, user, error="Choose one of the buttons.")
    return await handler(request, session, user)


async def _user_form(
    request: Request,
    session: Session,
    user: User,
    *,
    error: str | None = None,
    error_for: str = "",
    status: int = 400,
) -> Response:
    app = web_app(request)

    def load() -> tuple[int, bool]:
        return app.store.users.admin_count(), user.name in app.store.users.locked_names(app.now())

    admins, locked = await asyncio.to_thread(load)
    myself = user.id == session.user.id
    last_admin = user.role is Role.ADMIN and admins <= 1
    return console_render(
        request,
        session,
        "admin/user.html",
        {
            "person": user,
            "myself": myself,
            "last_admin": last_admin,
            "locked": locked,
            "error": error,
            "error_for": error_for,
            "min_length": passwords.MIN_LENGTH,
        },
        status=status if error else 200,
    )


async def _change_role(request: Request, session: Session, user: User) -> Response:
    app = web_app(request)
    role = str(form_of(request).get("role", ""))
    if role not in {r.value for r in Role}:
        return await _user_form(
            request, session, user, error="Choose editor or admin.", error_for="role"
        )
    if user.id == session.user.id:
        return await _user_form(
            request,
            session,
            user,
            error="You cannot change your own role. Another admin can.",
            error_for="role",
        )
    try:
        await asyncio.to_thread(app.store.users.set_role, user.name, Role(role))
    except LastAdmin:
        return await _user_form(
            request,
            session,
            user,
            error=f"{user.name} is the only admin. Make another user an admin first.",
            error_for="role",
            status=409,
        )
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "user-role",
        app.now(),
        target=f"user {user.name}",
        before={"role": user.role.value},
        after={"role": role},
    )
    return RedirectResponse(_back(user.name, "role", role), status_code=303)


async def _set_password(request: Request, session: Session, user: User) -> Response:
    app = web_app(request)
    form = form_of(request)
    password, again = str(form.get("password", "")), str(form.get("again", ""))
    problem = passwords.problem(password, again)
    if problem is None:
        try:
            hashed = await passwords.hash_in_pool(password)
        except passwords.Busy:
            problem = "The console is busy. Wait a few seconds, then try again."
    if problem is not None:
        return await _user_form(request, session, user, error=problem, error_for="password")

    def change() -> int:
        ended = app.store.users.session_count(user.name)
        app.store.users.set_password(user.name, hashed, app.now())
        return ended

    ended = await asyncio.to_thread(change)
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "user-passwd",
        app.now(),
        target=f"user {user.name}",
        after={"sign_ins_ended": ended},
    )
    return RedirectResponse(_back(user.name, "password"), status_code=303)


async def _unlock(request: Request, session: Session, user: User) -> Response:
    app = web_app(request)
    lifted = await asyncio.to_thread(app.store.users.unlock, user.name)
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "user-unlock",
        app.now(),
        target=f"user {user.name}",
        after={"locks": lifted},
    )
    return RedirectResponse(_back(user.name, "unlock"), status_code=303)


async def _totp_reset(request: Request, session: Session, user: User) -> Response:
    app = web_app(request)
    await asyncio.to_thread(app.store.users.totp_reset, user.name)
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "user-totp-reset",
        app.now(),
        target=f"user {user.name}",
        before={"two_step": user.totp_on},
        after={"two_step": False},
    )
    return RedirectResponse(_back(user.name, "totp-reset"), status_code=303)


async def _remove(request: Request, session: Session, user: User) -> Response:
    app = web_app(request)
    if user.id == session.user.id:
        return await _user_form(
            request,
            session,
            user,
            error="You cannot remove yourself. Another admin can.",
            error_for="remove",
        )
    if form_of(request).get("confirm") != "yes":
        return await _user_form(
            request,
            session,
            user,
            error=f"Tick the box to confirm that {user.name} should be removed.",
            error_for="remove",
        )
    try:
        await asyncio.to_thread(app.store.users.remove, user.name)
    except LastAdmin:
        return await _user_form(
            request,
            session,
            user,
            error=f"{user.name} is the only admin. Make another user an admin first.",
            error_for="remove",
            status=409,
        )
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "user-remove",
        app.now(),
        target=f"user {user.name}",
        before={"role": user.role.value, "two_step": user.totp_on},
    )
    return RedirectResponse(_back(user.name, "removed"), status_code=303)


ACTIONS = {
    "role": _change_role,
    "password": _set_password,
    "unlock": _unlock,
    "totp-reset": _totp_reset,
    "remove": _remove,
}
