"""The source lifecycle (healthy, failing, surging): one table in code and README, a
state machine over random polls with the clock moving, and a feed gone wrong end to end."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import hypothesis
from click.testing import Result
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from alerts.app import App
from alerts.areas import Gazetteer, load_gazetteer
from alerts.clock import ManualClock
from alerts.config import Config, SourceConfig
from alerts.ingest.lifecycle import TABLE, BatchAction, SourceEvent, SourceState, poll_event, step
from alerts.ingest.surges import settle_surge
from alerts.metrics import render_metrics
from alerts.pipeline import ONCE, run_cycle
from alerts.store import Store, open_store
from alerts.testing import SmtpSink
from alerts.types import Frequency, Hold
from tests.support import NOW, REPO, make_database
from tests.support.digests import subscribe
from tests.support.feed_server import serve_feeds
from tests.support.sections import ingest_from

#: The pipeline but the feed files (327 a run, not what is tested here).
MAIL = replace(ONCE, feeds="never")

README = (REPO / "README.md").read_text(encoding="utf-8")


# -- the table ------------------------------------------------------------------------


def readme_table() -> dict[tuple[SourceState, SourceEvent], tuple[SourceState, BatchAction]]:
    section = README.split("## When a source goes wrong", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    table = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        state = SourceState(cells[0])
        for event, cell in zip(header[1:], cells[1:], strict=True):
            after, action = (part.strip() for part in cell.split(","))
            table[(state, SourceEvent(event))] = (SourceState(after), BatchAction(action))
    return table


def test_the_readme_shows_the_lifecycle_table_the_code_follows() -> None:
    assert readme_table() == TABLE


def test_the_table_says_what_happens_for_every_state_and_event() -> None:
    assert set(TABLE) == {(state, event) for state in SourceState for event in SourceEvent}


def test_a_poll_is_a_surge_only_past_the_limit_and_a_first_poll_never_is() -> None:
    assert poll_event(read=True, first=False, mailable=20, limit=20) is SourceEvent.POLL
    assert poll_event(read=True, first=False, mailable=21, limit=20) is SourceEvent.SURGE
    assert poll_event(read=True, first=True, mailable=500, limit=20) is SourceEvent.FIRST_POLL
    assert poll_event(read=True, first=False, mailable=500, limit=0) is SourceEvent.POLL
    assert poll_event(read=False, first=False, mailable=0, limit=20) is SourceEvent.FAILED


def test_only_an_operator_ends_a_surge() -> None:
    state = SourceState.SURGING
    for event in (SourceEvent.POLL, SourceEvent.FAILED, SourceEvent.SURGE):
        state, _ = step(state, event)
        assert state is SourceState.SURGING
    assert step(state, SourceEvent.RELEASE) == (SourceState.HEALTHY, BatchAction.RELEASE)


# -- the real thing, over random polls ------------------------------------------------

LIMIT = 3


def advisory_file(folder: Path, number: int, now: datetime, zone: ZoneInfo) -> None:
    (folder / f"advisory-{number}.md").write_text(
        "```yaml\n"
        f"title: Doorstep callers in Chatham, number {number}\n"
        f"url: https://www.kent.police.uk/news/doorstep-{number}/\n"
        "area: Medway\n"
        f"publish:\n  date: {now.astimezone(zone):%H:%M %d/%m/%Y}\n"
        "```\n\n"
        f"Residents are asked to be wary of callers ({number}).\n",
        encoding="utf-8",
    )


def feed_document(items: list[tuple[int, datetime]]) -> bytes:
    entries = "".join(
        f"<item><title>Courier fraud warning {n}</title><link>https://feed.example/news/{n}</link>"
        f"<guid>https://feed.example/news/{n}</guid><description>Be wary of callers ({n}).</description>"
        f"<pubDate>{format_datetime(at)}</pubDate></item>"
        for n, at in items[-10:]  # a feed shows its latest entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>News</title>'
        f"<link>https://feed.example/</link><description>News</description>{entries}</channel></rss>"
    ).encode()


@dataclass
class Model:
    """What the table says of one source."""

    state: SourceState = SourceState.HEALTHY
    read_before: bool = False
    held: int = 0
    baseline: int = 0
    #: (when, how many) new advisories each poll brought, for a folder's minute.
    arrivals: list[tuple[datetime, int]] = field(default_factory=list)
    #: New ones waiting to be read (a folder's files while it is away, a feed's entries).
    waiting: int = 0


class SourceMachine(RuleBasedStateMachine):
    """A folder and a feed polled at random, advisories arriving in random numbers, the
    folder vanishing (an unmounted share) and the feed answering 500, an operator
    releasing or dropping, the clock moving; beside them a model of the table. The
    store must agree with the model, and nothing held or baseline may be mailable."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="alerts-source-"))
        self.server_context = serve_feeds()
        self.server = self.server_context.__enter__()

    @initialize()
    def start(self) -> None:
        self.clock = ManualClock(NOW)
        self.folder = self.root / "advisories"
        self.folder.mkdir()
        self.config = Config.model_validate(
            {
                "database": f"sqlite:///{self.root / 'alerts.db'}",
                "sources": [
                    {"path": str(self.folder), "settle_seconds": 0, "surge_limit": LIMIT},
                    {"feed": self.server.url("/news.rss"), "area": "kent", "surge_limit": LIMIT},
                ],
            }
        )
        self.folder_source, self.feed_source = self.config.sources
        self.store: Store = open_store(self.config.database)
        self.number = 0
        self.gone = False
        self.broken = False
        self.items: list[tuple[int, datetime]] = []
        self.models = {source.label: Model() for source in self.config.sources}
        self._serve_feed()

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()
        self.server_context.__exit__(None, None, None)
        shutil.rmtree(self.root, ignore_errors=True)

    def _serve_feed(self) -> None:
        if self.broken:
            self.server.routes["/news.rss"] = (500, {"Content-Type": "text/plain"}, b"down")
        else:
            self.server.routes["/news.rss"] = (
                200,
                {"Content-Type": "application/rss+xml"},
                feed_document(self.items),
            )

    # -- the world ------------------------------------------------------------------

    @precondition(lambda self: not self.gone)
    @rule()
    def folder_vanishes(self) -> None:
        self.folder.rename(self.root / ".gone")
        self.gone = True

    @precondition(lambda self: self.gone)
    @rule()
    def folder_returns(self) -> None:
        (self.root / ".gone").rename(self.folder)
        self.gone = False

    @rule()
    def feed_breaks_or_mends(self) -> None:
        self.broken = not self.broken
        self._serve_feed()

    @rule(minutes=st.sampled_from([0, 0.5, 2, 61]))
    def time_passes(self, minutes: float) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    # -- polls ----------------------------------------------------------------------

    @rule(count=st.integers(0, 6))
    def poll_folder(self, count: int) -> None:
        """``count`` files arrive, then the folder is looked at."""
        model = self.models[self.folder_source.label]
        for _ in range(count):
            self.number += 1
            folder = self.folder if not self.gone else self.root / ".gone"
            advisory_file(folder, self.number, self.clock.now(), self.config.tz)
        model.waiting += count
        self._poll(self.folder_source, read=not self.gone, first=False)

    @rule(count=st.integers(0, 6))
    def poll_feed(self, count: int) -> None:
        """``count`` entries appear in the feed (at most 10 are shown), then it is fetched."""
        model = self.models[self.feed_source.label]
        for _ in range(count):
            self.number += 1
            self.items.append((self.number, self.clock.now() - timedelta(minutes=1)))
        model.waiting = min(model.waiting + count, 10)
        self._serve_feed()
        self._poll(self.feed_source, read=not self.broken, first=not model.read_before)

    def _poll(self, source: SourceConfig, *, read: bool, first: bool) -> None:
        model = self.models[source.label]
        now = self.clock.now()
        report = ingest_from(
            self.config.sources,
            self.store,
            GAZETTEER,
            now=now,
            clock=self.clock,
            only=[source.label],
        )
        if not read:
            assert report.source_errors
            event = SourceEvent.FAILED
        else:
            assert len(report.new) == model.waiting, (report.rejected, report.source_errors)
            if not first:  # a baseline never counts towards a surge
                model.arrivals.append((now, model.waiting))
            window = [c for at, c in model.arrivals if at > now - timedelta(minutes=1)]
            mailable = (
                sum(window) if source.path is not None else (model.waiting if not first else 0)
            )
            event = poll_event(read=True, first=first, mailable=mailable, limit=LIMIT)
            model.read_before = True
        model.state, action = step(model.state, event)
        hypothesis.event(f"{'folder' if source.path else 'feed'}: {event} -> {action}")
        if action is BatchAction.HOLD:
            model.held += model.waiting
        elif action is BatchAction.BASELINE:
            model.baseline += model.waiting
        if read:
            model.waiting = 0
        surging = [s.source for s in report.surges]
        assert (source.label in surging) == (model.state is SourceState.SURGING)

    @rule(which=st.integers(0, 1), event=st.sampled_from([SourceEvent.RELEASE, SourceEvent.DROP]))
    def operator(self, which: int, event: SourceEvent) -> None:
        source = self.config.sources[which]
        model = self.models[source.label]
        count = settle_surge(self.store, source, event, now=self.clock.now())
        model.state, action = step(model.state, event)
        hypothesis.event(f"operator: {event} -> {action}")
        assert count == (model.held if action in (BatchAction.RELEASE, BatchAction.DROP) else 0)
        if action in (BatchAction.RELEASE, BatchAction.DROP):
            model.held = 0

    @invariant()
    def store_agrees_with_the_model(self) -> None:
        if not hasattr(self, "store"):
            return
        lives = self.store.holds.lifecycles(list(self.models))
        for label, model in self.models.items():
            assert (lives[label].state if label in lives else SourceState.HEALTHY) is model.state
            assert self.store.holds.count_held(label, Hold.SURGE) == model.held
            assert self.store.holds.count_held(label, Hold.BASELINE) == model.baseline
        # Nothing held or baseline is ever a candidate for mail, nor (held) published.
        candidates = self.store.advisories.candidates(
            after=NOW - timedelta(days=30),
            until=self.clock.now(),
            max_age=timedelta(days=7),
        )
        published = self.store.advisories.find(include_outside=False)
        held = {
            a.id for a in self.store.advisories.find(include_outside=True) if a.hold is not None
        }
        assert not held & {c.id for c in candidates}
        assert all(a.hold in (None, Hold.BASELINE) for a in published)


GAZETTEER: Gazetteer = load_gazetteer("kent")

SourceMachine.TestCase.settings = settings(
    max_examples=20, stateful_step_count=15, deadline=None, suppress_health_check=list(HealthCheck)
)
TestSourceLifecycle = SourceMachine.TestCase


# -- a neighbouring force's feed goes wrong -------------------------------------------


def rss(items: range, published: datetime) -> bytes:
    body = "".join(
        f"<item><title>Flood advisory {i}</title><link>https://flood.example/news/{i}</link>"
        f"<guid>https://flood.example/news/{i}</guid><description>Advice about {i}.</description>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Flood</title>'
        f"<link>https://flood.example/</link><description>A feed gone wrong</description>{body}</channel></rss>"
    ).encode()


def test_a_feed_bringing_300_new_advisories_at_each_of_two_polls_is_held_named_and_mails_nobody_until_released(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    clock: ManualClock,
    db_url: str,
) -> None:
    with serve_feeds() as server, SmtpSink() as sink:
        config = write_config(
            database=db_url,
            sources=[{"feed": server.url("/flood.rss"), "area": "kent", "name": "neighbour"}],
            delivery={
                "backend": "smtp",
                "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
            },
        )
        app = App(config)
        try:
            subscribe(
                app,
                "ann@example.org",
                ["chatham"],
                frequency=Frequency.IMMEDIATE,
                at=NOW - timedelta(hours=1),
            )
            route = (200, {"Content-Type": "application/rss+xml"})
            server.routes["/flood.rss"] = (*route, rss(range(3), NOW - timedelta(days=2)))
            first = run_cycle(app, MAIL)
            assert (first.new, first.surging, sink.count) == (3, {}, 0)  # the baseline
            reports = []
            for poll in range(2):
                clock.advance(timedelta(minutes=10))
                server.routes["/flood.rss"] = (
                    *route,
                    rss(range(100 + 300 * poll, 400 + 300 * poll), clock.now()),
                )
                reports.append(run_cycle(app, MAIL))
            assert [r.new for r in reports] == [300, 300]
            assert [r.surging for r in reports] == [{"neighbour": 300}, {"neighbour": 600}]
            assert all(r.ok for r in reports)  # a hold is not a failure: exit status 0
            assert "HELD, sources surging: 600 from neighbour" in reports[-1].summary()
            assert sink.count == 0
            assert (
                not (app.config.feeds.out / "all.rss").exists()
                or b"Flood advisory 1" not in (app.config.feeds.out / "all.rss").read_bytes()
            )

            status = run_cli("status", config=config)
            assert "HELD: 600 advisories from neighbour (surge)" in status.stdout
            held = run_cli("advisories", "list", "--held", "--limit", "2", config=config)
            assert [line.endswith("[held: surge]") for line in held.stdout.splitlines()] == [
                True,
                True,
            ]
            shown = run_cli("advisories", "show", "10", config=config)  # 1-3: the baseline
            assert "held:       in the surge of neighbour since" in shown.stdout
            listed = run_cli("sources", "list", "--json", config=config)
            assert json.loads(listed.stdout) == [
                {
                    "source": "neighbour",
                    "kind": "feed",
                    "state": "surging",
                    "held": 600,
                    "surge_limit": 20,
                }
            ]
            metrics = render_metrics(app.store, clock.now).decode()
            assert (
                'alerts_source_state{kind="feed",source="neighbour",state="surging"} 1.0' in metrics
            )
            assert 'alerts_source_held_advisories{hold="surge",source="neighbour"} 600.0' in metrics

            clock.advance(timedelta(minutes=5))  # the operator looks, then releases
            released = run_cli("sources", "release", "neighbour", config=config)
            assert (
                released.exit_code == 0
                and "600 advisories from neighbour released" in released.stdout
            )
            # Released, they go out as any burst does: a few at once, the rest gathered.
            for _ in range(3):
                clock.advance(timedelta(minutes=40))
                run_cycle(app, replace(MAIL, ingest=False))
        finally:
            app.close()
    assert sink.count <= 10
    assert [got.message()["Subject"] for got in sink.received][-1] == "596 more alerts for Chatham"


def test_releasing_a_source_that_holds_nothing_says_so_and_an_unknown_name_is_a_usage_error(
    run_cli: Callable[..., Result], advisory_dir: Path, config_path: Path
) -> None:
    make_database(config_path)  # release changes what exists: it never makes a database
    assert run_cli("sources", "release", "advisories").stdout == "advisories holds nothing.\n"
    nothing = run_cli("sources", "release", str(advisory_dir))  # the folder's path names it too
    unknown = run_cli("sources", "release", "nowhere")
    assert nothing.exit_code == 0 and nothing.stdout == f"{advisory_dir} holds nothing.\n"
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("Error: sources: no source named 'nowhere'")
