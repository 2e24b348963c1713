"""``alerts users add|list|remove|passwd|unlock|totp-reset``: who may sign in to the operator
console at /admin. Passwords are read from stdin (``--password-stdin``) or asked for
twice without echo; never from the command line, where ``ps`` would show them."""

from __future__ import annotations

import sys

import click

from alerts.app import App
from alerts.cli import cli, json_option, print_json, with_app, with_existing_app
from alerts.store.users import Role, name_problem

ACTOR = "cli"


@cli.group()
def users() -> None:
    """Console accounts: editors and admins who sign in at /admin."""


def read_password(from_stdin: bool) -> str:
    from alerts.web.admin.passwords import WeakPassword, check_strength

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_strength(password)
    except WeakPassword as exc:
        raise click.UsageError(str(exc)) from None
    return password


password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (for scripts).",
)


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    required=True,
    help="editor: advisories; admin: also subscribers and users.",
)
@password_stdin
@with_app
def add_user(app: App, name: str, role: str, password_stdin: bool) -> None:
    """Add a console user.

    Example:
      printf '%s\\n' "$PASSWORD" | alerts users add jo --role editor --password-stdin
    """
    from alerts.web.admin.passwords import hash_password

    problem = name_problem(name)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="NAME")
    hashed = hash_password(read_password(password_stdin))
    user = app.store.users.add(name, Role(role), hashed, app.now())
    app.store.audit.record(
        ACTOR, "user-add", app.now(), target=f"user {name}", after={"role": role}
    )
    click.echo(
        f"Added {user.role.value} {user.name}: they sign in at {app.config.site.base_url}/admin/login"
    )


@users.command("list")
@json_option
@with_existing_app
def list_users(app: App, as_json: bool) -> None:
    """List console users."""
    people = app.store.users.list()
    if as_json:
        print_json(
            [
                {
                    "name": u.name,
                    "role": u.role.value,
                    "created_at": app.local(u.created_at),
                    "password_changed_at": app.local(u.password_changed_at),
                    "two_step": u.totp_on,
                    "last_sign_in_at": app.local(u.last_sign_in_at) if u.last_sign_in_at else None,
                }
                for u in people
            ]
        )
        return
    if not people:
        click.echo("No console users. Add one with 'alerts users add NAME --role admin'.")
    for user in people:
        click.echo(
            f"{user.name:<24} {user.role.value:<7} password set {app.local(user.password_changed_at):%d/%m/%Y %H:%M}"
            f"  two-step {'on' if user.totp_on else 'off'}"
        )


@users.command("remove")
@click.argument("name")
@with_app
def remove_user(app: App, name: str) -> None:
    """Remove a console user; their sign-ins end at once (never the last admin)."""
    user = app.store.users.remove(name)
    app.store.audit.record(
        ACTOR, "user-remove", app.now(), target=f"user {name}", before={"role": user.role.value}
    )
    click.echo(f"Removed {name}; they are signed out everywhere.")


@users.command("passwd")
@click.argument("name")
@password_stdin
@with_app
def change_password(app: App, name: str, password_stdin: bool) -> None:
    """Set a user's password; their sign-ins end at once."""
    from alerts.web.admin.passwords import hash_password

    app.store.users.get(name)  # before asking for a password
    app.store.users.set_password(name, hash_password(read_password(password_stdin)), app.now())
    app.store.audit.record(ACTOR, "user-passwd", app.now(), target=f"user {name}")
    click.echo(f"New password set for {name}; they are signed out everywhere.")


@users.command("unlock")
@click.argument("name")
@with_app
def unlock_user(app: App, name: str) -> None:
    """Lift the sign-in locks on NAME (five wrong passwords from one place lock it there for 15 minutes)."""
    lifted = app.store.users.unlock(name)
    app.store.audit.record(
        ACTOR, "user-unlock", app.now(), target=f"user {name}", after={"locks": lifted}
    )
    click.echo(f"Lifted {lifted} lock{'' if lifted == 1 else 's'} on {name}.")


@users.command("totp-reset")
@click.argument("name")
@with_app
def reset_totp(app: App, name: str) -> None:
    """Turn two-step sign-in off for NAME (a lost phone); they sign in with the password
    alone until they set it up again under 'Your account'."""
    before = app.store.users.get(name)
    app.store.users.totp_reset(name)
    app.store.audit.record(
        ACTOR,
        "user-totp-reset",
        app.now(),
        target=f"user {name}",
        before={"two_step": before.totp_on},
        after={"two_step": False},
    )
    click.echo(f"Two-step sign-in is off for {name}; they can set it up again in the console.")
