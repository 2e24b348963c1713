"""Prometheus metrics, computed from the database at each scrape.

Every figure comes from the tables (:mod:`alerts.store.monitoring` and its neighbours), not from counters in one
process's memory, so any web process answers the same however many senders and web
workers run. The totals and the latency histogram only grow (they live in the
``counters`` and ``latency_buckets`` tables, counted as messages are sent), so purging
sent messages never looks like a counter reset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from alerts.store import Store
from alerts.store.limits import FORM_MAIL_KEY
from alerts.store.outbox import OutboxStatus
from alerts.store.senders import ROLES
from alerts.types import MailPriority, SourceState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DatabaseCollector(Collector):
    """Reads the figures from the database on each collect."""

    def __init__(
        self, store: Store, clock: Callable[[], datetime], sources: Collection[str] | None = None
    ):
        self.store = store
        self.clock = clock
        #: The configured sources' names: only these are reported (an older version kept
        #: health under a feed's URL, which may carry credentials).
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        counts = self.store.metrics.outbox_counts()
        depth = GaugeMetricFamily(
            "alerts_outbox_messages",
            "Messages in the outbox by status and priority (0 transactional, 10 alerts, 20 digests).",
            labels=["status", "priority"],
        )
        for status in OutboxStatus:
            for priority in MailPriority:
                depth.add_metric(
                    [status.value, priority.name.lower()],
                    counts.get((status.value, int(priority)), 0),
                )
        yield depth

        oldest = self.store.metrics.oldest_waiting()
        yield GaugeMetricFamily(
            "alerts_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting to be sent (0 when none waits).",
            value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        )

        totals = CounterMetricFamily(
            "alerts_delivery_messages",
            "Delivery outcomes since the database was made: sent, deferred (to retry), bounced, failed,"
            " unknown (no final reply to the body, tries used up).",
            labels=["outcome"],
        )
        for outcome, value in self.store.metrics.delivery_totals().items():
            totals.add_metric([outcome], value)
        yield totals

        paused = GaugeMetricFamily(
            "alerts_relay_paused_until_timestamp_seconds",
            "When each relay that asked every sender to wait (a quota, a throttle) lets sending resume;"
            " reply: its words.",
            labels=["relay", "reply"],
        )
        for pause in self.store.relays.active(now):
            paused.add_metric([pause.relay, pause.reply[:200]], pause.until.timestamp())
        yield paused
        yield CounterMetricFamily(
            "alerts_form_mail_delayed",
            "Emails the forms set off past the hourly ceiling on all of them, queued for the next hour.",
            value=self.store.limits.held_back(FORM_MAIL_KEY),
        )
        busy = CounterMetricFamily(
            "alerts_form_busy",
            "Form posts answered 503 busy because the forms' work queue was full (nothing was done;"
            " the resident is asked to try again), by form (subscribe, manage).",
            labels=["form"],
        )
        for form, value in self.store.metrics.form_busy().items():
            busy.add_metric([form], value)
        yield busy

        polled = GaugeMetricFamily(
            "alerts_source_last_poll_timestamp_seconds",
            "When each source was last polled.",
            labels=["source", "kind"],
        )
        succeeded = GaugeMetricFamily(
            "alerts_source_last_success_timestamp_seconds",
            "When each source was last polled successfully (0: never).",
            labels=["source", "kind"],
        )
        failing = GaugeMetricFamily(
            "alerts_source_consecutive_failures",
            "Failed polls in a row of each source.",
            labels=["source", "kind"],
        )
        failures = CounterMetricFamily(
            "alerts_source_poll_failures",
            "Failed polls of each source, ever.",
            labels=["source", "kind"],
        )
        polls = CounterMetricFamily(
            "alerts_source_polls", "Polls of each source, ever.", labels=["source", "kind"]
        )
        for health in self.store.sources.healths():
            if self.sources is not None and health.source not in self.sources:
                continue
            labels = [health.source, health.kind]
            polled.add_metric(
                labels, health.last_poll_at.timestamp() if health.last_poll_at else 0.0
            )
            succeeded.add_metric(
                labels, health.last_ok_at.timestamp() if health.last_ok_at else 0.0
            )
            failing.add_metric(labels, health.failures)
            failures.add_metric(labels, health.failures_total)
            polls.add_metric(labels, health.polls_total)
        yield from (polled, succeeded, failing, failures, polls)

        # The lifecycle (alerts.ingest.lifecycle): 1 for the state each source is in.
        state = GaugeMetricFamily(
            "alerts_source_state",
            "Where each source stands: 1 for its state (healthy, failing, surging), 0 for the others.",
            labels=["source", "kind", "state"],
        )
        healths = self.store.sources.healths()
        lives = self.store.holds.lifecycles([health.source for health in healths])
        for health in healths:
            if self.sources is not None and health.source not in self.sources:
                continue  # a row kept from before sources had names (keyed by a URL): never shown
            current = lives[health.source].state if health.source in lives else SourceState.HEALTHY
            for each in SourceState:
                state.add_metric(
                    [health.source, health.kind, each.value], 1.0 if each is current else 0.0
                )
        yield state
        held = GaugeMetricFamily(
            "alerts_source_held_advisories",
            "Advisories each source's hold keeps from inboxes and feeds (surge: until released; dropped: for good; review: until a person or its timeout releases it).",
            labels=["source", "hold"],
        )
        for batch in self.store.holds.batches():
            if self.sources is not None and batch.source not in self.sources:
                continue
            held.add_metric([batch.source, batch.hold.value], float(batch.count))
        yield held

        build = self.store.metrics.last_feed_build()
        yield GaugeMetricFamily(
            "alerts_feeds_build_seconds",
            "How long the last feed build took.",
            value=build[1] if build else 0.0,
        )
        yield GaugeMetricFamily(
            "alerts_feeds_last_build_timestamp_seconds",
            "When the feeds were last built (0: never).",
            value=build[0].timestamp() if build else 0.0,
        )

        running = GaugeMetricFamily(
            "alerts_sender_processes",
            "Senders that run, by role: serve (alerts serve's own), send (alerts send --follow,"
            " serve's sender processes among them), web (alerts web's).",
            labels=["role"],
        )
        roles = Counter(sender.role for sender in self.store.senders.live(now))
        for role in sorted({*ROLES, *roles}):
            running.add_metric([role], float(roles[role]))
        yield running

        beat = self.store.runs.last_beat()
        yield GaugeMetricFamily(
            "alerts_scheduler_heartbeat_timestamp_seconds",
            "When 'alerts serve' last said it was alive (0: never).",
            value=beat[0].timestamp() if beat else 0.0,
        )

        histogram = HistogramMetricFamily(
            "alerts_arrival_to_relay_seconds",
            "From an advisory's arrival (or a sign-up) to the relay accepting the message, by kind of message.",
            labels=["kind"],
        )
        for latency in self.store.metrics.latencies():
            buckets = [(_le(bound), float(count)) for bound, count in latency.buckets]
            buckets.append(("+Inf", float(latency.count)))
            histogram.add_metric([latency.kind], buckets, latency.total_seconds)
        yield histogram


def _le(bound: float) -> str:
    """A bucket's bound as prometheus_client writes it ("1.0", "+Inf")."""
    # As prometheus_client's floatToGoString writes these bounds (all well under 1e16).
    return repr(float(bound))


def render_metrics(
    store: Store, clock: Callable[[], datetime], sources: Collection[str] | None = None
) -> bytes:
    """The metrics in the Prometheus text format (of the sources named in ``sources``, when given)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(store, clock, sources))
    return generate_latest(registry)
