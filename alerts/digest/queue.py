"""Queueing: plan every active subscriber's next messages, render each distinct variant
once, and write ``digests``, ``outbox`` and ``subscriber_advisories`` rows and the moved
watermarks together, one transaction per batch of subscribers, so a crash loses or
repeats nothing. Subscribers are streamed, never all in memory.

A run covers the advisories that changed in (watermark, now]; the urgent sweep of daily
and weekly subscribers, which moves no watermark, covers (where it last finished, now]
(:mod:`alerts.store.sweeps`), so an urgent alert is planned for them once, not again at
every cycle until their digest. Runs are one at a time,
and never beside a change being stamped and committed: whoever queues (the pipeline's
cycle, the console, a command) holds the queue turn (:func:`alerts.locking.queue_turn`)
and takes ``now`` inside it.

Alerts (immediate and urgent) pass the flood guard (:mod:`alerts.digest.guard`): what
comes past a subscriber's hourly limit is held (their watermark stays put) and gathered
into one message once the hour is up.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from alerts.areas import Gazetteer
from alerts.config import DigestsConfig, MailSettings
from alerts.digest.guard import HELD, WINDOW, Limits, Recent, split_entries
from alerts.digest.plan import Entry, Planner, Variant
from alerts.digest.render import DigestRenderer
from alerts.message import new_message_id
from alerts.store.digests import QueuedMessage, SentRevision
from alerts.store.store import Store
from alerts.store.sweeps import URGENT as URGENT_SWEEP
from alerts.types import Advisory, DigestKind, Frequency, MailPriority, Subscriber

log = logging.getLogger(__name__)

BATCH = 1000


@dataclass(frozen=True)
class PlannedMessage:
    """One message a run queues (or, in a dry run, would queue)."""

    subscriber_id: int
    email: str
    kind: str
    subject: str
    advisory_ids: tuple[int, ...]
    digest_key: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscriber_id": self.subscriber_id,
            "email": self.email,
            "kind": self.kind,
            "subject": self.subject,
            "advisory_ids": list(self.advisory_ids),
        }


@dataclass
class QueueReport:
    """What one run queued. ``digests``: distinct variants used; ``rendered``: of them,
    rendered in this run (the rest existed already)."""

    frequency: str
    dry_run: bool = False
    messages: int = 0
    digests: int = 0
    rendered: int = 0
    subscribers: int = 0
    advisory_ids: set[int] = field(default_factory=set)
    #: Subscribers some of whose alerts the flood guard held for later, and how many alerts.
    held_subscribers: int = 0
    held: int = 0

    @property
    def advisories(self) -> int:
        return len(self.advisory_ids)

    def as_dict(self) -> dict[str, Any]:
        return {
            "frequency": self.frequency,
            "dry_run": self.dry_run,
            "messages": self.messages,
            "digests": self.digests,
            "rendered": self.rendered,
            "subscribers": self.subscribers,
            "advisories": self.advisories,
            "held_subscribers": self.held_subscribers,
            "held": self.held,
        }


@dataclass(frozen=True)
class _Pass:
    """One sweep over subscribers: which ones, which advisories, which kind of message."""

    frequencies: tuple[Frequency, ...]
    kind: DigestKind
    urgent_only: bool = False
    #: Move the watermark: True when this sweep covers everything new for them.
    move_watermark: bool = True


def queue_digests(
    mail: MailSettings,
    digests: DigestsConfig,
    store: Store,
    gazetteer: Gazetteer,
    frequency: Frequency,
    *,
    now: datetime,
    dry_run: bool = False,
    on_message: Callable[[PlannedMessage], None] | None = None,
) -> QueueReport:
    """Plan, render and queue the messages of one run for subscribers of ``frequency``.

    ``IMMEDIATE`` also sends urgent advisories at once to the daily and weekly
    subscribers of their areas who did not opt out of urgent alerts. ``dry_run`` writes
    nothing and renders nothing; ``on_message`` is called for every message planned.
    Each committed batch wakes the senders (:func:`alerts.store.digests.queue_batch`), so
    the first thousand messages are on their way while the rest are planned.
    """
    frequency = Frequency(frequency)
    renderer = DigestRenderer(mail, digests, gazetteer)
    report = QueueReport(frequency=frequency.value, dry_run=dry_run)
    day = now.astimezone(mail.tz).date()
    if frequency is Frequency.IMMEDIATE:
        passes = [
            _Pass((Frequency.IMMEDIATE,), DigestKind.IMMEDIATE),
            _Pass(
                (Frequency.DAILY, Frequency.WEEKLY),
                DigestKind.URGENT,
                urgent_only=True,
                move_watermark=False,
            ),
        ]
    else:
        passes = [_Pass((frequency,), DigestKind(frequency.value))]
    limits = Limits(alerts=digests.alerts_per_hour, urgent=digests.urgent_per_hour)
    run = _Run(
        store,
        renderer,
        report,
        domain=mail.email.domain,
        now=now,
        limits=limits,
        dry_run=dry_run,
        on_message=on_message,
    )
    for sweep in passes:
        if sweep.move_watermark:
            _sweep(store, run, gazetteer, digests, sweep, now=now, day=day, after=None)
            continue
        # The urgent sweep moves no watermark (theirs belong to their digests): it looks
        # from where it last finished, or from the oldest watermark when it never did (or
        # a subscriber reopened it: alerts.store.sweeps), and records where it got to,
        # unless it held something back (the flood guard's held alerts come again once
        # the hour is up, so it must look at them again).
        seen = store.digests.swept_until(URGENT_SWEEP)
        held = report.held
        _sweep(store, run, gazetteer, digests, sweep, now=now, day=day, after=seen)
        if not dry_run and report.held == held:
            store.digests.record_sweep(URGENT_SWEEP, seen=seen, until=now)
    log.info("queued %s", report.as_dict())
    return report


def _sweep(
    store: Store,
    run: _Run,
    gazetteer: Gazetteer,
    digests: DigestsConfig,
    sweep: _Pass,
    *,
    now: datetime,
    day: date,
    after: datetime | None,
) -> None:
    """Plan and queue one pass over its subscribers: what changed in (their oldest
    watermark, or ``after`` if later, ``now``]."""
    oldest = store.subscribers.oldest_watermark(sweep.frequencies)
    if oldest is None:
        return
    candidates = store.advisories.candidates(
        after=oldest if after is None else max(oldest, after),
        until=now,
        max_age=timedelta(days=digests.max_age_days),
        urgent_only=sweep.urgent_only,
    )
    if not candidates:
        if sweep.move_watermark and not run.dry_run:
            # Nothing new for anyone: move every watermark in one statement.
            store.digests.move_all_watermarks(sweep.frequencies, now)
        return
    planner = Planner(gazetteer, candidates, day=None if sweep.kind.single else day)
    for wanted in sweep.frequencies:
        # The urgent sweep reads only those who want urgent alerts at once.
        chosen = store.subscribers.iterate(
            frequency=wanted, urgent=True if sweep.urgent_only else None, batch=BATCH
        )
        for batch in _batches(chosen, BATCH):
            run.batch(planner, sweep, batch)


class _Run:
    """The state of one run: variants already stored (key -> digest id) and the
    advisories loaded for rendering."""

    def __init__(
        self,
        store: Store,
        renderer: DigestRenderer,
        report: QueueReport,
        *,
        domain: str,
        now: datetime,
        limits: Limits,
        dry_run: bool,
        on_message: Callable[[PlannedMessage], None] | None,
    ):
        self.store = store
        self.renderer = renderer
        self.report = report
        self.now = now
        self.dry_run = dry_run
        self.on_message = on_message
        self.domain = domain
        self.digest_ids: dict[str, int] = {}
        self.seen_keys: set[str] = set()
        self.limits = limits
        self._advisories: collections.OrderedDict[int, Advisory] = collections.OrderedDict()

    def batch(self, planner: Planner, sweep: _Pass, batch: list[Subscriber]) -> None:
        if not batch:
            return
        sent = self.store.digests.sent_revisions(
            [s.id for s in batch], [c.id for c in planner.candidates]
        )
        recent = (
            self.store.digests.recent_alerts([s.id for s in batch], self.now - WINDOW)
            if sweep.kind.single
            else {}
        )
        plans: list[tuple[Subscriber, list[Variant]]] = []
        held: dict[int, list[Entry]] = {}
        for subscriber in batch:
            entries = planner.entries(subscriber, sent, new_only=sweep.urgent_only)
            if sweep.kind.single and entries:
                variants, held_now = self._guarded(
                    planner, sweep, subscriber, entries, recent.get(subscriber.id, {})
                )
                if held_now:
                    held[subscriber.id] = held_now
            else:
                variants = planner.variants(subscriber, entries, sweep.kind)
            if variants:
                plans.append((subscriber, variants))
        self.report.held_subscribers += len(held)
        self.report.held += sum(len(entries) for entries in held.values())
        variants_needed = {v.key: v for _, variants in plans for v in variants}
        self._need_advisories(i for v in variants_needed.values() for i in v.advisory_ids)
        new = [variant for key, variant in variants_needed.items() if key not in self.digest_ids]
        if self.dry_run:
            self._report(plans, {v.key: self.renderer.subject(v, self._advisories) for v in new})
            return
        # Together: premailer's cost is mostly the stylesheet, paid once per call.
        rendered = {r.key: r for r in self.renderer.render_all(new, self._advisories)}
        messages, revisions = self._rows(plans)
        revisions += [
            SentRevision(subscriber_id, entry.advisory_id, HELD, None)
            for subscriber_id, entries in held.items()
            for entry in entries
            if not entry.held
        ]
        ids = self.store.digests.queue_batch(
            rendered=rendered.values(),
            known=self.digest_ids,
            messages=messages,
            sent=revisions,
            # A subscriber with alerts held keeps their watermark, so the held ones are
            # planned again (and gathered) once the hour is up.
            watermarks=[s.id for s in batch if s.id not in held] if sweep.move_watermark else None,
            now=self.now,
        )
        # Only now that the batch is committed may later batches reuse its digests.
        self.digest_ids = ids
        self.report.rendered += len(rendered)
        self._report(plans, {})

    def _guarded(
        self,
        planner: Planner,
        sweep: _Pass,
        subscriber: Subscriber,
        entries: list[Entry],
        recent: dict[str, int],
    ) -> tuple[list[Variant], list[Entry]]:
        """The flood guard's answer for one subscriber: the messages to queue now, and
        the entries held for later."""
        counted = Recent(
            alerts=recent.get(DigestKind.IMMEDIATE.value, 0)
            + recent.get(DigestKind.GATHERED.value, 0),
            urgent=recent.get(DigestKind.URGENT.value, 0),
        )
        split = split_entries(entries, planner.urgent, counted, self.limits)
        variants = planner.variants(subscriber, split.singles, sweep.kind)
        if split.gathered:
            variants.append(planner.gathered(subscriber, split.gathered))
        return variants, split.held

    def _rows(
        self, plans: list[tuple[Subscriber, list[Variant]]]
    ) -> tuple[list[QueuedMessage], list[SentRevision]]:
        """The outbox rows and sent revisions of a batch's plans."""
        messages: list[QueuedMessage] = []
        sent: list[SentRevision] = []
        for subscriber, variants in plans:
            for variant in variants:
                messages.append(
                    QueuedMessage(
                        subscriber.id,
                        variant.key,
                        new_message_id(self.domain),
                        priority=MailPriority.ALERT if variant.kind.alert else MailPriority.DIGEST,
                        arrived_at=self._arrived(variant),
                    )
                )
                sent.extend(
                    SentRevision(subscriber.id, entry.advisory_id, entry.revision, variant.key)
                    for entry in variant.entries
                )
        return messages, sent

    def _arrived(self, variant: Variant) -> datetime | None:
        """When the advisories it carries arrived (changed): the earliest of them."""
        times = [
            self._advisories[e.advisory_id].changed_at
            for e in variant.entries
            if e.advisory_id in self._advisories
        ]
        return min(times) if times else None

    def _report(
        self, plans: list[tuple[Subscriber, list[Variant]]], subjects: dict[str, str]
    ) -> None:
        report = self.report
        for subscriber, variants in plans:
            report.subscribers += 1
            for variant in variants:
                report.messages += 1
                report.advisory_ids.update(variant.advisory_ids)
                if variant.key not in self.seen_keys:
                    self.seen_keys.add(variant.key)
                    report.digests += 1
                if self.on_message is not None:
                    subject = subjects.get(variant.key) or self.renderer.subject(
                        variant, self._advisories
                    )
                    self.on_message(
                        PlannedMessage(
                            subscriber.id,
                            subscriber.email,
                            variant.kind.value,
                            subject,
                            tuple(variant.advisory_ids),
                            variant.key,
                        )
                    )

    def _need_advisories(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        missing = wanted - self._advisories.keys()
        if missing:
            self._advisories.update(self.store.advisories.load(missing))
        # Bodies can be large: keep a bounded number, those this batch needs last.
        for advisory_id in wanted:
            self._advisories.move_to_end(advisory_id)
        while len(self._advisories) > max(500, len(wanted)):
            self._advisories.popitem(last=False)


def _batches(items: Iterator[Subscriber], size: int) -> Iterator[list[Subscriber]]:
    batch: list[Subscriber] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
