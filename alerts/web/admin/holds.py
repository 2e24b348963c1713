"""Holds in the console: each advisory's holds in words (update interval, surge,
replacement, review), an editor's hold and release of one advisory (the rule of
``alerts advisories hold|release``, :mod:`alerts.ingest.review`), and the sources page with
each source's health, its surge and its release or drop (``alerts sources
release|drop``). Every action is CSRF-checked by the gate and written to the audit log
with the hold before and after.

A release from the console queues the immediate (and urgent) alerts at once, and this
process's sender sends them (:mod:`alerts.web.sending`): only one of two releases at
once finds the advisory held, so it is queued once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from alerts.app import App
from alerts.config import SourceConfig
from alerts.digest import queue_digests
from alerts.errors import NotFound
from alerts.ingest.lifecycle import SourceEvent, SourceState
from alerts.ingest.review import (
    Settled,
    hold_by_editor,
    hold_record,
    reason_words,
    release_advisory,
)
from alerts.ingest.surges import settle_surge
from alerts.locking import queue_turn
from alerts.store.users import Session
from alerts.types import Advisory, Frequency, Hold
from alerts.web.admin.guard import PREFIX, console_render, console_route, form_of
from alerts.web.pages import web_app
from alerts.web.sending import ConsoleSends

T = TypeVar("T")


def routes() -> list[Route]:
    return [
        console_route(
            PREFIX + "/advisories/{advisory_id:int}/hold",
            hold,
            methods=["POST"],
            name="admin_hold",
        ),
        console_route(
            PREFIX + "/advisories/{advisory_id:int}/release",
            release,
            methods=["POST"],
            name="admin_release",
        ),
        console_route(PREFIX + "/sources", sources, name="admin_sources"),
        console_route(
            PREFIX + "/sources/settle", settle, methods=["POST"], name="admin_sources_settle"
        ),
    ]


@dataclass(frozen=True)
class HoldNote:
    """One hold on an advisory: its kind (``surge``, ``update``...) and its words."""

    kind: str
    words: str
    #: An editor may release it here (review, replacement).
    releasable: bool = False


def hold_notes(app: App, item: Advisory) -> list[HoldNote]:
    """What keeps ``item`` from inboxes, each with the words that made it."""

    def when(moment: datetime | None) -> str:
        return f" since {app.local(moment):%H:%M %d/%m/%Y}" if moment else ""

    notes: list[HoldNote] = []
    detail = item.hold_detail or {}
    if item.hold is Hold.REVIEW:
        words = "; ".join(reason_words(item)) or "waits for a person"
        notes.append(HoldNote("review", f"Waits for review{when(item.hold_at)}: {words}.", True))
    elif item.hold is Hold.SURGE:
        notes.append(
            HoldNote(
                "surge",
                f"Held with the surge of {item.hold_source}{when(item.hold_at)}: more new"
                " advisories at once than its surge_limit. Release or drop the batch on the"
                " Sources page.",
            )
        )
    elif item.hold is Hold.DROPPED:
        notes.append(
            HoldNote("dropped", f"Dropped with the surge of {item.hold_source}: never mailed.")
        )
    elif item.hold is Hold.REPLACEMENT:
        notes.append(
            HoldNote(
                "replacement",
                f"Took the url of advisory {detail.get('replaces')} '{detail.get('title')}'"
                f" ({str(detail.get('published_at'))[:10]}) but says something else: held as"
                " an advisory of its own. Release it to send it as it is.",
                True,
            )
        )
    elif item.hold is Hold.BASELINE:
        notes.append(
            HoldNote(
                "baseline",
                f"From the first read of {item.hold_source}: published, mailed to nobody.",
            )
        )
    if item.update_held_since is not None:
        notes.append(
            HoldNote(
                "update interval",
                f"A change{when(item.update_held_since)} waits for its update interval"
                " (digests.update_interval_hours) before it is mailed.",
            )
        )
    return notes


def queue_alerts(app: App, console: ConsoleSends, now: datetime) -> int:
    """Queue the immediate (and urgent) alerts now, as a pipeline run does, for this
    process's sender to send. Returns how many messages."""
    console.queued()  # before queueing: the wake-up it sends must find the window open
    try:
        report = queue_digests(
            app.config.mail,
            app.config.digests,
            app.store,
            app.gazetteer,
            Frequency.IMMEDIATE,
            now=now,
        )
    except IntegrityError:
        # 'alerts serve' queued the same messages at the same moment: the outbox's one
        # row per (subscriber, message) refused ours, so nobody gets it twice.
        return 0
    return report.messages


def change_and_queue(
    app: App, console: ConsoleSends, change: Callable[[datetime], tuple[T, bool]]
) -> tuple[T, int, datetime]:
    """Make a console change (a send, a release) at an instant taken here, then queue
    its alerts if it says so (its second value), holding the queue turn
    (:func:`alerts.locking.queue_turn`) and taking the instant only once it is held: a
    queueing moves each subscriber's watermark to its instant, so a change stamped
    earlier but committed after another queueing (this process's, 'alerts serve''s, a
    command's) read would be passed over. The sending happens after, outside the turn.
    Returns the change's value, the messages queued and the instant."""
    with console.serial, queue_turn(app.config.database).hold("web console"):
        now = app.now()
        value, queue = change(now)
        return value, queue_alerts(app, console, now) if queue else 0, now


def console_sends(request: Request) -> ConsoleSends:
    sends: ConsoleSends = request.app.state.console_sends
    return sends


async def _advisory_or_404(request: Request, session: Session) -> Advisory | Response:
    try:
        return await asyncio.to_thread(
            web_app(request).store.advisories.get, request.path_params["advisory_id"]
        )
    except NotFound:
        return console_render(
            request,
            session,
            "admin/refused.html",
            {"title": "No such advisory", "hint": "Go back to the inbox."},
            status=404,
        )


async def hold(request: Request, session: Session) -> Response:
    """An editor holds an advisory for review: out of the mail and the feeds until released."""
    app = web_app(request)
    item = await _advisory_or_404(request, session)
    if isinstance(item, Response):
        return item

    def change(now: datetime) -> tuple[Settled, bool]:
        done = hold_by_editor(app.store, app.config.sources, item.id, session.user.name, now=now)
        return done, False

    done, _, now = await asyncio.to_thread(change_and_queue, app, console_sends(request), change)
    if done.changed:
        after = hold_record(await asyncio.to_thread(app.store.advisories.get, item.id))
        await asyncio.to_thread(
            app.store.audit.record,
            session.user.name,
            "hold",
            now,
            target=f"advisory {item.id}",
            before=done.before,
            after=after,
        )
    flag = "held" if done.changed else "unchanged"
    return RedirectResponse(f"{PREFIX}/advisories/{item.id}?{flag}=1", status_code=303)


async def release(request: Request, session: Session) -> Response:
    """An editor releases an advisory held for review or as a replacement: queued at
    once (by whichever of two editors releases it first), sent by this process."""
    app = web_app(request)
    item = await _advisory_or_404(request, session)
    if isinstance(item, Response):
        return item

    def change(now: datetime) -> tuple[Settled, bool]:
        done = release_advisory(app.store, item.id, now=now)
        return done, done.changed

    done, queued, now = await asyncio.to_thread(
        change_and_queue, app, console_sends(request), change
    )
    if not done.changed:
        return RedirectResponse(f"{PREFIX}/advisories/{item.id}?unchanged=1", status_code=303)
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "release",
        now,
        target=f"advisory {item.id}",
        before=done.before,
        after={"hold": None, "queued": queued},
    )
    return RedirectResponse(f"{PREFIX}/advisories/{item.id}?released={queued}", status_code=303)


def _source_rows(app: App) -> list[dict[str, Any]]:
    healths = {health.source: health for health in app.store.sources.healths()}
    lives = app.store.holds.lifecycles([source.label for source in app.config.sources])
    waiting: dict[str, int] = {}
    for batch in app.store.holds.batches():
        if batch.hold is Hold.REVIEW:
            waiting[batch.source] = waiting.get(batch.source, 0) + batch.count
    rows = []
    for source in app.config.sources:
        life = lives.get(source.label)
        rows.append(
            {
                "name": source.label,
                "kind": "folder" if source.path is not None else "feed",
                "state": (life.state if life else SourceState.HEALTHY).value,
                "held": app.store.holds.count_held(source.label, Hold.SURGE),
                "surge_limit": source.surge_limit,
                "review": waiting.get(source.label, 0),
                "health": healths.pop(source.label, None),
            }
        )
    # Read before under a name no longer configured: still shown, with nothing to settle.
    for label, health in healths.items():
        rows.append(
            {
                "name": label,
                "kind": health.kind,
                "state": "failing" if health.failures else "healthy",
                "held": 0,
                "surge_limit": 0,
                "review": waiting.get(label, 0),
                "health": health,
            }
        )
    return rows


async def sources(request: Request, session: Session) -> Response:
    """Each configured source: healthy, failing or surging, how reading it went, what
    its surge holds (release or drop) and what of it waits for review."""
    app = web_app(request)
    rows = await asyncio.to_thread(_source_rows, app)
    done = request.query_params.get("done")
    count = request.query_params.get("count", "")
    context = {
        "rows": rows,
        "done": done if done in ("released", "dropped", "nothing") else None,
        "count": int(count) if count.isdigit() else 0,
        "error": None,
    }
    return console_render(request, session, "admin/sources.html", context)


def _source_named(app: App, name: object) -> SourceConfig | None:
    return next((s for s in app.config.sources if s.label == name), None)


async def settle(request: Request, session: Session) -> Response:
    """Release or drop a surging source's batch (``alerts sources release|drop``)."""
    app = web_app(request)
    form = form_of(request)
    source = _source_named(app, form.get("source"))
    action = form.get("action")
    if source is None or action not in ("release", "drop"):
        rows = await asyncio.to_thread(_source_rows, app)
        error = "Choose a source and release or drop: that source is not configured."
        return console_render(
            request,
            session,
            "admin/sources.html",
            {"rows": rows, "done": None, "count": 0, "error": error},
            status=400,
        )
    event = SourceEvent.RELEASE if action == "release" else SourceEvent.DROP
    before = await asyncio.to_thread(app.store.holds.lifecycles, [source.label])

    def change(now: datetime) -> tuple[int, bool]:
        count = settle_surge(app.store, source, event, now=now)
        return count, bool(count) and event is SourceEvent.RELEASE

    count, queued, now = await asyncio.to_thread(
        change_and_queue, app, console_sends(request), change
    )
    if count:
        life = before.get(source.label)
        await asyncio.to_thread(
            app.store.audit.record,
            session.user.name,
            f"source-{action}",
            now,
            target=f"source {source.label}",
            before={
                "state": (life.state if life else SourceState.HEALTHY).value,
                "held": count,
            },
            after={"state": SourceState.HEALTHY.value, "advisories": count, "queued": queued},
        )
    done = ("released" if action == "release" else "dropped") if count else "nothing"
    return RedirectResponse(f"{PREFIX}/sources?done={done}&count={count}", status_code=303)
