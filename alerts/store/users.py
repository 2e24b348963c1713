"""People who may sign in to the operator console, their sign-ins, and failed
attempts (``store.users``). Passwords arrive here already hashed: hashing is the web
layer's (:mod:`alerts.web.admin.auth`), off the event loop."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from alerts.errors import Conflict, NotFound
from alerts.store.schema import login_failures, sessions, users


class Role(enum.StrEnum):
    #: Reads and corrects advisories, composes and sends them.
    EDITOR = "editor"
    #: An editor who also sees subscribers, exports and erases them, and manages users.
    ADMIN = "admin"


class UserExists(Conflict):
    """There is already a user by that name."""


class LastAdmin(Conflict):
    """The change would leave nobody who can manage users."""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user's name, or None."""
    if not name or len(name) > 64 or any(c.isspace() or not c.isprintable() for c in name):
        return "a name is 1 to 64 characters without spaces"
    return None


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    password_hash: str
    created_at: datetime
    password_changed_at: datetime
    #: The two-step secret, encrypted (:mod:`alerts.web.admin.totp`); None: not turned on.
    totp_secret: str | None = None
    #: A secret set up but not yet confirmed with a code.
    totp_pending: str | None = None
    #: The last 30-second step a code was accepted for: none at or before it is accepted.
    totp_last_step: int | None = None
    last_sign_in_at: datetime | None = None

    @property
    def totp_on(self) -> bool:
        return self.totp_secret is not None


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires_at: datetime
    #: The password was right; the two-step code is still due.
    awaiting_code: bool = False


@dataclass(frozen=True)
class Failures:
    count: int
    window_start: datetime
    locked_until: datetime | None


def _user(row: object) -> User:
    data = row._mapping  # type: ignore[attr-defined]
    return User(
        id=data["id"],
        name=data["name"],
        role=Role(data["role"]),
        password_hash=data["password_hash"],
        created_at=data["created_at"],
        password_changed_at=data["password_changed_at"],
        totp_secret=data["totp_secret"],
        totp_pending=data["totp_pending"],
        totp_last_step=data["totp_last_step"],
        last_sign_in_at=data["last_sign_in_at"],
    )


class Users:
    """Console accounts and sessions (``store.users``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- accounts ---------------------------------------------------------------------

    def add(self, name: str, role: Role, password_hash: str, now: datetime) -> User:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(users).values(
                        name=name,
                        role=role.value,
                        password_hash=password_hash,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
        except IntegrityError:
            raise UserExists(
                f"there is already a user called {name!r}",
                hint="choose another name, or 'alerts users passwd'",
            ) from None
        return self.get(name)

    def find(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return _user(row) if row is not None else None

    def get(self, name: str) -> User:
        user = self.find(name)
        if user is None:
            raise NotFound(
                f"no user called {name!r}", hint="'alerts users list' shows who there is"
            )
        return user

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(row) for row in conn.execute(select(users).order_by(users.c.name))]

    def by_id(self, user_id: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return _user(row) if row is not None else None

    def remove(self, name: str) -> User:
        """Remove the account and end every sign-in it has. Refused (:class:`LastAdmin`)
        for the last admin: somebody must still be able to manage users."""
        user = self.get(name)
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
            conn.execute(delete(users).where(users.c.id == user.id))
            if user.role is Role.ADMIN:
                self._keep_an_admin(conn, f"removing {name}")
        return user

    def set_role(self, name: str, role: Role) -> User:
        """Make ``name`` an editor or an admin; refused (:class:`LastAdmin`) when that
        would leave no admin. The role is read at every request: it applies at once."""
        user = self.get(name)
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user.id).values(role=role.value))
            if user.role is Role.ADMIN:
                self._keep_an_admin(conn, f"making {name} an {role.value}")
        return self.get(name)

    @staticmethod
    def _keep_an_admin(conn: Connection, change: str) -> None:
        # Checked inside the change's transaction, after it: two admins demoting each
        # other at once still leave one (the second transaction sees the first's row).
        left = conn.execute(
            select(func.count()).select_from(users).where(users.c.role == Role.ADMIN.value)
        ).scalar_one()
        if left == 0:
            raise LastAdmin(
                f"{change} would leave no admin",
                hint="make another user an admin first",
            )

    def admin_count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(users).where(users.c.role == Role.ADMIN.value)
                ).scalar_one()
            )

    def mark_signed_in(self, user: User, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user.id).values(last_sign_in_at=now))

    # -- two-step sign-in (TOTP) ------------------------------------------------------
    # Secrets arrive encrypted; this module never sees one in the clear.

    def totp_begin(self, name: str, encrypted_secret: str) -> User:
        """Keep a new secret aside until a code made from it confirms it."""
        user = self.get(name)
        with self.engine.begin() as conn:
            conn.execute(
                update(users).where(users.c.id == user.id).values(totp_pending=encrypted_secret)
            )
        return self.get(name)

    def totp_confirm(self, name: str, step: int) -> User:
        """The pending secret becomes the one sign-in asks a code of; ``step`` (that of
        the confirming code) is used up."""
        user = self.get(name)
        with self.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user.id, users.c.totp_pending.is_not(None))
                .values(totp_secret=users.c.totp_pending, totp_pending=None, totp_last_step=step)
            )
        return self.get(name)

    def totp_reset(self, name: str) -> User:
        """Turn two-step sign-in off for ``name`` (a lost phone); the next setup makes a
        new secret."""
        user = self.get(name)
        with self.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(totp_secret=None, totp_pending=None, totp_last_step=None)
            )
        return self.get(name)

    def use_totp_step(self, user: User, step: int) -> bool:
        """Mark ``step`` used if it is later than the last one used: True the first time
        only, even for two requests at once (one compare-and-set)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(users)
                .where(
                    users.c.id == user.id,
                    or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
                )
                .values(totp_last_step=step)
            )
        return bool(done.rowcount == 1)

    def set_password(
        self, name: str, password_hash: str, now: datetime, *, keep_sessions: bool = False
    ) -> User:
        """A new password; every sign-in made with the old one ends (``keep_sessions``:
        only a re-hash of the same password at sign-in)."""
        user = self.get(name)
        with self.engine.begin() as conn:
            values = {"password_hash": password_hash}
            if not keep_sessions:
                values["password_changed_at"] = now  # type: ignore[assignment]
                conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
            conn.execute(update(users).where(users.c.id == user.id).values(**values))
        return self.get(name)

    # -- sessions ---------------------------------------------------------------------

    def start_session(
        self,
        user: User,
        token_hash: str,
        csrf: str,
        now: datetime,
        lifetime: timedelta,
        *,
        awaiting_code: bool = False,
    ) -> None:
        with self.engine.begin() as conn:
            # Sessions that ran out are dropped as new ones start: the table stays small.
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            conn.execute(
                insert(sessions).values(
                    id=token_hash,
                    user_id=user.id,
                    csrf=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + lifetime,
                    awaiting_code=awaiting_code,
                )
            )

    def session(
        self, token_hash: str, now: datetime, idle: timedelta, *, awaiting_code: bool = False
    ) -> Session | None:
        """The live session with this token hash, or None (unknown, expired, idle too
        long, or its user gone); a live one is marked seen now. A sign-in still awaiting
        its two-step code is found only when asked for (``awaiting_code``), and a full
        one only when not: neither stands in for the other."""
        query = (
            select(sessions.c.csrf, sessions.c.expires_at, sessions.c.last_seen_at, users)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id == token_hash, sessions.c.awaiting_code == awaiting_code)
        )
        with self.engine.begin() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            if row.expires_at <= now or row.last_seen_at <= now - idle:
                conn.execute(delete(sessions).where(sessions.c.id == token_hash))
                return None
            conn.execute(
                update(sessions).where(sessions.c.id == token_hash).values(last_seen_at=now)
            )
        return Session(
            user=_user(row), csrf=row.csrf, expires_at=row.expires_at, awaiting_code=awaiting_code
        )

    def end_session(self, token_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id == token_hash))

    def session_count(self, name: str) -> int:
        user = self.get(name)
        with self.engine.connect() as conn:
            return len(
                conn.execute(select(sessions.c.id).where(sessions.c.user_id == user.id)).all()
            )

    # -- failed sign-ins --------------------------------------------------------------

    def failures(self, key: str) -> Failures | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(login_failures).where(login_failures.c.key == key)).first()
        return (
            Failures(row._mapping["count"], row.window_start, row.locked_until)
            if row is not None
            else None
        )

    def record_failure(
        self, key: str, now: datetime, *, window: timedelta, limit: int, lock: timedelta
    ) -> Failures:
        """Count one failure for ``key`` (a fresh window once the last one passed);
        reaching ``limit`` within the window locks the key for ``lock``."""
        with self.engine.begin() as conn:
            row = conn.execute(select(login_failures).where(login_failures.c.key == key)).first()
            if row is None or row.window_start <= now - window:
                count, start = 1, now
            else:
                count, start = int(row._mapping["count"]) + 1, row.window_start
            locked = now + lock if count >= limit else None
            values = {"count": count, "window_start": start, "locked_until": locked}
            if row is None:
                conn.execute(insert(login_failures).values(key=key, **values))
            else:
                conn.execute(
                    update(login_failures).where(login_failures.c.key == key).values(**values)
                )
        return Failures(count, start, locked)

    def clear_failures(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.key == key))

    def locked_names(self, now: datetime) -> set[str]:
        """Names locked from at least one client now."""
        with self.engine.connect() as conn:
            keys = conn.execute(
                select(login_failures.c.key).where(
                    login_failures.c.key.startswith("account:"),
                    login_failures.c.locked_until > now,
                )
            ).scalars()
            # account:<name>:<client>; a name may hold ':', the client hash never does.
            return {key.removeprefix("account:").rpartition(":")[0] for key in keys}

    def unlock(self, name: str) -> int:
        """Lift every lock on ``name`` (from any client); returns how many there were."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    delete(login_failures).where(
                        login_failures.c.key.startswith(f"account:{name}:")
                    )
                ).rowcount
            )

    def prune_failures(self, now: datetime, keep: timedelta) -> int:
        with self.engine.begin() as conn:
            stale = login_failures.c.window_start < now - keep
            return int(conn.execute(delete(login_failures).where(stale)).rowcount)
