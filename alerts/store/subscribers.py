"""Subscriber records: validate, add, change, stream, and the status changes that the
law cares about (PECR): an address that unsubscribed or was suppressed is never made
active again by anyone but its owner, through a confirmed sign-up.

How statuses move, event by event, is one table: :mod:`alerts.subscribers.lifecycle`
(also in the README); this module applies it to the rows.

The watermark (advisories that changed after it are new to the subscriber) starts
when they become active, so a new subscriber is not flooded with old mail.

A little over 500 lines: the status rules above and the operations that apply them
are kept in one file so that they are read together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from alerts.errors import AlertsError, NotFound
from alerts.store.ids import among
from alerts.store.schema import UtcDateTime, subscriber_areas, subscribers
from alerts.store.sweeps import reopen
from alerts.subscribers.validation import (
    InvalidSubscriber,
    OptedOut,
    Preferences,
    Subscription,
    normalise_email,
)
from alerts.tokens import Confirmation, LinkClaim, link_fits, new_link_key
from alerts.types import Frequency, Subscriber, SubscriberStatus

ACTIVE = SubscriberStatus.ACTIVE
PENDING = SubscriberStatus.PENDING
UNSUBSCRIBED = SubscriberStatus.UNSUBSCRIBED
SUPPRESSED = SubscriberStatus.SUPPRESSED
#: Statuses that mean "do not mail": only the owner's confirmed sign-up leaves them.
OPTED_OUT = frozenset({UNSUBSCRIBED, SUPPRESSED})


# -- reads ----------------------------------------------------------------------


def opted_out_variant(conn: Connection, email: str) -> Any:
    """An unsubscribed or suppressed row for ``email`` spelled in any case, or None."""
    return conn.execute(
        select(subscribers.c.id, subscribers.c.email, subscribers.c.status)
        .where(
            func.lower(subscribers.c.email) == email.lower(),
            subscribers.c.status.in_([s.value for s in OPTED_OUT]),
        )
        .limit(1)
    ).first()


def mailbox_variant(conn: Connection, email: str) -> Any:
    """A row for ``email`` spelled in any case (an opted-out one first), or None."""
    opted_out_first = case((subscribers.c.status.in_([s.value for s in OPTED_OUT]), 0), else_=1)
    return conn.execute(
        select(subscribers.c.id, subscribers.c.email, subscribers.c.status)
        .where(func.lower(subscribers.c.email) == email.lower())
        .order_by(opted_out_first, subscribers.c.id)
        .limit(1)
    ).first()


# -- writes ---------------------------------------------------------------------


def insert_subscriber(
    conn: Connection,
    subscription: Subscription,
    *,
    status: SubscriberStatus,
    now: datetime,
    origin: str | None = None,
) -> int:
    active = status is ACTIVE
    subscriber_id = int(
        conn.execute(
            insert(subscribers)
            .values(
                email=subscription.email,
                name=subscription.name,
                frequency=subscription.frequency.value,
                status=SubscriberStatus(status).value,
                forwardable=subscription.forwardable,
                urgent=subscription.urgent,
                bounces=0,
                created_at=now,
                confirmed_at=now if active else None,
                status_changed_at=now,
                watermark=now if active else None,
                origin=origin,
                link_key=new_link_key(),
            )
            .returning(subscribers.c.id)
        ).scalar_one()
    )
    set_areas(conn, subscriber_id, subscription.areas)
    return subscriber_id


def apply_preferences(conn: Connection, subscriber_id: int, changes: Preferences) -> None:
    values = changes.values()
    if values:
        result = conn.execute(
            update(subscribers).where(subscribers.c.id == subscriber_id).values(**values)
        )
        if result.rowcount == 0:
            raise NotFound(f"no subscriber with id {subscriber_id}")
    if changes.areas is not None:
        if not changes.areas:
            raise InvalidSubscriber("at least one area is required")
        set_areas(conn, subscriber_id, changes.areas)
    if any(v is not None for v in (changes.areas, changes.frequency, changes.urgent)):
        # New areas, another frequency, urgent alerts asked for: what changed after their
        # watermark may be theirs now, so the urgent sweep looks from there again.
        reopen(conn, subscriber_id)


def _suppress(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    result = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id, subscribers.c.status != SUPPRESSED.value)
        .values(status=SUPPRESSED.value, status_changed_at=now)
    )
    return result.rowcount == 1


def opted_out(email: str, status: SubscriberStatus) -> OptedOut:
    how = "unsubscribed" if status is UNSUBSCRIBED else "was suppressed (bounces or a complaint)"
    return OptedOut(
        f"{email} {how}; it is not added again",
        hint="only its owner can subscribe again, on the subscribe page",
    )


def set_areas(conn: Connection, subscriber_id: int, areas: Iterable[str]) -> None:
    conn.execute(delete(subscriber_areas).where(subscriber_areas.c.subscriber_id == subscriber_id))
    rows = [{"subscriber_id": subscriber_id, "area": area} for area in sorted(set(areas))]
    if rows:
        conn.execute(insert(subscriber_areas), rows)


def _load(conn: Connection, query: Any) -> list[Subscriber]:
    rows = conn.execute(query).mappings().all()
    areas: dict[int, list[str]] = {row["id"]: [] for row in rows}
    if rows:
        for subscriber_id, area in conn.execute(
            select(subscriber_areas.c.subscriber_id, subscriber_areas.c.area)
            .where(among(subscriber_areas.c.subscriber_id, list(areas), conn))
            .order_by(subscriber_areas.c.area)
        ):
            areas[subscriber_id].append(area)
    return [row_to_subscriber(row, areas[row["id"]]) for row in rows]


def row_to_subscriber(row: Any, areas: Iterable[str]) -> Subscriber:
    return Subscriber(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        areas=tuple(areas),
        frequency=Frequency(row["frequency"]),
        status=SubscriberStatus(row["status"]),
        forwardable=bool(row["forwardable"]),
        urgent=bool(row["urgent"]),
        watermark=row["watermark"],
        created_at=row["created_at"],
        confirmed_at=row["confirmed_at"],
        bounces=row["bounces"] or 0,
        status_changed_at=row["status_changed_at"],
        link_key=row["link_key"],
    )


def same_preferences(subscriber: Subscriber, subscription: Subscription) -> bool:
    return (
        set(subscriber.areas) == set(subscription.areas)
        and subscriber.frequency is subscription.frequency
        and (subscription.name is None or subscriber.name == subscription.name)
        and subscriber.forwardable == subscription.forwardable
        and subscriber.urgent == subscription.urgent
    )


def as_preferences(subscription: Subscription, existing: Subscriber | None = None) -> Preferences:
    """All of a subscription as a change; a name left out keeps the stored one."""
    return Preferences(
        areas=subscription.areas,
        frequency=subscription.frequency,
        name=subscription.name
        if subscription.name is not None or existing is None
        else existing.name,
        forwardable=subscription.forwardable,
        urgent=subscription.urgent,
    )


class Subscribers:
    """Subscriber records and their status changes (``store.subscribers``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, subscriber_id: int) -> Subscriber:
        """One subscriber by id. Raises :class:`NotFound`."""
        with self.engine.connect() as conn:
            found = _load(conn, select(subscribers).where(subscribers.c.id == int(subscriber_id)))
        if not found:
            raise NotFound(f"no subscriber with id {subscriber_id}")
        return found[0]

    def for_link(self, claim: LinkClaim | Confirmation) -> Subscriber:
        """The subscriber a verified link was made for: the row with its id, only if the
        link fits that row (its key; or, for a link of the old form, a row that existed
        when it was made). Raises :class:`NotFound` otherwise: the person it was made for
        is gone, and the link acts on nobody."""
        subscriber = self.get(claim.subscriber_id)
        if not link_fits(claim, subscriber.link_key, subscriber.created_at):
            raise NotFound(f"no subscriber with id {claim.subscriber_id} for this link")
        return subscriber

    def find(self, email: str) -> Subscriber | None:
        """The subscriber with this address (domain compared case-insensitively), or None."""
        try:
            address = normalise_email(email)
        except InvalidSubscriber:
            return None
        with self.engine.connect() as conn:
            found = _load(conn, select(subscribers).where(subscribers.c.email == address))
        return found[0] if found else None

    def find_mailbox(self, email: str) -> Subscriber | None:
        """The subscriber for this mailbox: the whole address compared without case (most
        mail systems ignore it), the exact spelling first. None for an invalid address."""
        try:
            address = normalise_email(email)
        except InvalidSubscriber:
            return None
        with self.engine.connect() as conn:
            found = _load(
                conn,
                select(subscribers)
                .where(func.lower(subscribers.c.email) == address.lower())
                .order_by(subscribers.c.id),
            )
        exact = [subscriber for subscriber in found if subscriber.email == address]
        return exact[0] if exact else (found[0] if found else None)

    def similar_addresses(self, email: str, limit: int = 3) -> list[str]:
        """Stored addresses equal to ``email`` but for case (``Jo@`` for ``jo@``): a hint."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(subscribers.c.email)
                    .where(func.lower(subscribers.c.email) == email.strip().lower())
                    .order_by(subscribers.c.id)
                    .limit(limit)
                ).scalars()
            )

    def iterate(
        self,
        *,
        status: SubscriberStatus | None = ACTIVE,
        frequency: Frequency | None = None,
        areas: Iterable[str] | None = None,
        urgent: bool | None = None,
        batch: int = 1000,
    ) -> Iterator[Subscriber]:
        """Subscribers in id order, streamed ``batch`` at a time (keyset pagination), so
        memory stays flat however many there are and no read is held open between batches.

        ``status`` None means every status; ``areas`` keeps those subscribed to any of them;
        ``urgent`` those who did (True) or did not (False) ask for urgent alerts at once.
        """
        query = select(subscribers).order_by(subscribers.c.id).limit(batch)
        if status is not None:
            query = query.where(subscribers.c.status == SubscriberStatus(status).value)
        if frequency is not None:
            query = query.where(subscribers.c.frequency == Frequency(frequency).value)
        if urgent is not None:
            query = query.where(subscribers.c.urgent == urgent)
        if areas is not None:
            wanted = sorted(set(areas))
            query = query.where(
                subscribers.c.id.in_(
                    select(subscriber_areas.c.subscriber_id).where(
                        subscriber_areas.c.area.in_(wanted)
                    )
                )
            )
        last = 0
        while True:
            with self.engine.connect() as conn:
                page = _load(conn, query.where(subscribers.c.id > last))
            yield from page
            if len(page) < batch:
                return
            last = page[-1].id

    def count(self) -> dict[str, int]:
        """How many subscribers there are in each status."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
            )
            counts = {status.value: 0 for status in SubscriberStatus}
            counts.update({status: int(n) for status, n in rows})
        return counts

    def add(
        self,
        subscription: Subscription,
        *,
        now: datetime,
        status: SubscriberStatus = ACTIVE,
        origin: str | None = None,
    ) -> Subscriber:
        """Store a new subscriber. ``status`` ACTIVE starts their watermark at ``now``;
        PENDING leaves it unset until they confirm. Raises :class:`OptedOut` or
        :class:`InvalidSubscriber` (already subscribed) when the address exists."""
        if status in OPTED_OUT:
            raise ValueError("Subscribers.add adds pending or active subscribers only")
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(subscribers.c.id, subscribers.c.email, subscribers.c.status).where(
                    subscribers.c.email == subscription.email
                )
            ).first()
            if existing is None:
                # Most mail systems ignore the case of the local part: Jo@ and jo@ are the
                # same mailbox, one row (an opt-out under either spelling blocks both).
                existing = mailbox_variant(conn, subscription.email)
            if existing is not None:
                if SubscriberStatus(existing.status) in OPTED_OUT:
                    raise opted_out(existing.email, SubscriberStatus(existing.status))
                raise InvalidSubscriber(
                    f"{subscription.email} is already subscribed ({existing.status})",
                    hint="use 'alerts subscribers add' with the same address to change it",
                )
            subscriber_id = insert_subscriber(
                conn, subscription, status=status, now=now, origin=origin
            )
        return self.get(subscriber_id)

    def update(self, subscriber_id: int, changes: Preferences) -> Subscriber:
        """Change a subscriber's preferences (never their status)."""
        with self.engine.begin() as conn:
            apply_preferences(conn, subscriber_id, changes)
        return self.get(subscriber_id)

    def confirm(
        self,
        subscriber_id: int,
        *,
        now: datetime,
        preferences: Preferences | None = None,
        issued_at: datetime | None = None,
    ) -> bool:
        """Make a pending subscriber active, their watermark starting ``now``, with
        ``preferences`` (those the confirmation email stated) in the same transaction. An
        unsubscribed one is made active too when the confirmation was ``issued_at`` after
        they unsubscribed (they signed up again; an older link does nothing). False (and
        nothing changes) otherwise: already active, suppressed, or unsubscribed since."""
        confirmable = subscribers.c.status == PENDING.value
        if issued_at is not None:
            confirmable = or_(
                confirmable,
                and_(
                    subscribers.c.status == UNSUBSCRIBED.value,
                    subscribers.c.status_changed_at < issued_at,
                ),
            )
        with self.engine.begin() as conn:
            result = conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, confirmable)
                .values(
                    status=ACTIVE.value,
                    confirmed_at=now,
                    watermark=now,
                    status_changed_at=now,
                    bounces=0,
                )
            )
            if result.rowcount == 1 and preferences is not None:
                apply_preferences(conn, subscriber_id, preferences)
            return result.rowcount == 1

    def unsubscribe(self, subscriber_id: int, *, now: datetime) -> bool:
        """Stop mailing a subscriber. The row stays (as unsubscribed) so no import can add
        the address again. False when they were already unsubscribed or suppressed."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(subscribers)
                .where(
                    subscribers.c.id == subscriber_id,
                    subscribers.c.status.in_([ACTIVE.value, PENDING.value]),
                )
                .values(status=UNSUBSCRIBED.value, status_changed_at=now)
            )
            return result.rowcount == 1

    def undo_unsubscribe(self, subscriber_id: int, *, left_at: datetime, now: datetime) -> bool:
        """Undo the unsubscribe of ``left_at`` (a one-click on a forwardable edition, which
        may have come from a forwarded copy): the subscriber is active again exactly as
        before it (areas, frequency, edition, confirmation and watermark are untouched by
        an unsubscribe, and stay as they were). Only while nothing changed since: it is
        still unsubscribed at that very moment, and was confirmed. False (and nothing
        changes) otherwise: undone already, left again since, came back or suppressed."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(subscribers)
                .where(
                    subscribers.c.id == subscriber_id,
                    subscribers.c.status == UNSUBSCRIBED.value,
                    subscribers.c.status_changed_at == left_at,
                    subscribers.c.confirmed_at.is_not(None),
                )
                .values(status=ACTIVE.value, status_changed_at=now)
            )
            if result.rowcount == 1:
                # Back with the watermark they left with: nothing published meanwhile is
                # missed, urgent alerts included (the urgent sweep looks from there).
                reopen(conn, subscriber_id)
            return result.rowcount == 1

    def suppress(self, subscriber_id: int, *, now: datetime) -> bool:
        """Never mail this address again (hard bounces, a complaint). False if it already was."""
        with self.engine.begin() as conn:
            return _suppress(conn, subscriber_id, now)

    def record_bounce(self, subscriber_id: int, max_bounces: int, *, now: datetime) -> bool:
        """Count a hard bounce; at ``max_bounces`` the address is suppressed. True when this
        bounce suppressed it (so delivery can report it)."""
        with self.engine.begin() as conn:
            bounces = conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(bounces=subscribers.c.bounces + 1)
                .returning(subscribers.c.bounces)
            ).scalar()
            if bounces is None:
                raise NotFound(f"no subscriber with id {subscriber_id}")
            return bounces >= max_bounces and _suppress(conn, subscriber_id, now)

    def resubscribe_pending(
        self, subscription: Subscription, *, now: datetime, origin: str = "web"
    ) -> tuple[Subscriber, bool]:
        """A sign-up from the web: a new address becomes pending; a pending one takes the
        new preferences. An unsubscribed one is left as it is: only its owner's confirmation
        (whose link carries the preferences) makes it active again. Returns the subscriber
        and whether a confirmation should be sent: not for an active one (nothing to
        confirm) nor a suppressed one (never mailed).
        """
        for _attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    row = conn.execute(
                        select(subscribers.c.id, subscribers.c.status).where(
                            subscribers.c.email == subscription.email
                        )
                    ).first()
                    # The same mailbox spelled in another case is the same person, and the
                    # same row: never a second one beside it.
                    row = row or mailbox_variant(conn, subscription.email)
                    if row is None:
                        subscriber_id = insert_subscriber(
                            conn, subscription, status=PENDING, now=now, origin=origin
                        )
                        send = True
                    else:
                        subscriber_id = row.id
                        status = SubscriberStatus(row.status)
                        send = status in (PENDING, UNSUBSCRIBED)
                        if status is PENDING:
                            apply_preferences(conn, row.id, as_preferences(subscription))
                subscriber = self.get(subscriber_id)
                if subscriber.status is UNSUBSCRIBED:
                    # Unchanged in the store; the confirmation states (and its link carries)
                    # what was asked for now.
                    subscriber = dataclasses.replace(
                        subscriber,
                        areas=subscription.areas,
                        frequency=subscription.frequency,
                        urgent=subscription.urgent,
                        forwardable=subscription.forwardable,
                    )
                return subscriber, send
            except IntegrityError:
                continue  # two sign-ups for one new address at once: the other won; go again
        raise AlertsError("could not save the subscription, please try again")

    def save(
        self,
        subscription: Subscription,
        *,
        now: datetime,
        status: SubscriberStatus = ACTIVE,
        origin: str | None = None,
    ) -> tuple[Subscriber, str]:
        """Add a subscriber, or change an existing pending or active one to match
        ``subscription`` (its status stays). Returns the subscriber and ``"added"``,
        ``"updated"`` or ``"unchanged"``. Raises :class:`OptedOut` for an address that
        unsubscribed or was suppressed: it is never added back. The address is compared
        without case: another spelling of a stored mailbox is that subscriber."""
        existing = self.find_mailbox(subscription.email)
        if existing is None:
            try:
                return self.add(subscription, now=now, status=status, origin=origin), "added"
            except InvalidSubscriber:
                existing = self.find_mailbox(subscription.email)  # added meanwhile
                if existing is None:
                    raise
        if existing.status in OPTED_OUT:
            raise opted_out(existing.email, existing.status)
        if same_preferences(existing, subscription):
            return existing, "unchanged"
        return self.update(existing.id, as_preferences(subscription, existing)), "updated"

    def oldest_watermark(self, frequencies: Iterable[Frequency]) -> datetime | None:
        """The earliest watermark among active subscribers of these frequencies (None: nobody)."""
        start = func.coalesce(
            subscribers.c.watermark, subscribers.c.confirmed_at, subscribers.c.created_at
        )
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.min(start, type_=UtcDateTime())).where(
                    subscribers.c.status == SubscriberStatus.ACTIVE.value,
                    subscribers.c.frequency.in_([f.value for f in frequencies]),
                )
            ).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    def insert_new(
        self,
        rows: Iterable[tuple[Subscription, SubscriberStatus]],
        *,
        now: datetime,
        origin: str | None = None,
    ) -> list[int] | None:
        """Insert subscribers whose addresses are not stored yet, in one transaction; their
        ids in order. None, with nothing written, when one of them was added meanwhile."""
        try:
            with self.engine.begin() as conn:
                return [
                    insert_subscriber(conn, sub, status=status, now=now, origin=origin)
                    for sub, status in rows
                ]
        except IntegrityError:
            return None

    def address_book(self) -> tuple[set[str], dict[str, int]]:
        """Every stored mailbox (the address in lower case), and the ids of the opted-out ones by address in lower case
        (most mail systems ignore the case of the local part, so an opt-out under any
        spelling counts)."""
        stored: set[str] = set()
        opted_out: dict[str, int] = {}
        opted_out_values = {status.value for status in OPTED_OUT}
        with self.engine.connect() as conn:
            for subscriber_id, email, status in conn.execute(
                select(subscribers.c.id, subscribers.c.email, subscribers.c.status)
            ):
                stored.add(email.lower())
                if status in opted_out_values:
                    opted_out[email.lower()] = subscriber_id
        return stored, opted_out
