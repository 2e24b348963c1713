"""Review before mailing (``review:``): which advisories wait for a person, the table in
code and README, and a state machine over arrivals, holds, releases (twice at once too),
the review job and the clock moving: nothing waiting is ever queued, everything
released is queued once, and a source's timeout does what its ``then`` says."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import hypothesis
import pytest
import yaml
from click.testing import Result
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from alerts.app import App
from alerts.clock import ManualClock
from alerts.config import SourceConfig, load_config
from alerts.digest import queue_digests
from alerts.errors import ConfigError
from alerts.ingest.review import (
    TABLE,
    Reason,
    ReviewAction,
    ReviewEvent,
    ReviewState,
    hold_by_editor,
    reasons_for,
    release_advisory,
    settle_timeouts,
)
from alerts.pipeline import ONCE, REVIEW, run_cycle
from alerts.scheduler import schedule_table
from alerts.types import Frequency, Hold
from tests.support import NOW, REPO
from tests.support.advisory_files import write_advisory
from tests.support.digests import subscribe
from tests.support.tables import outbox_rows

README = (REPO / "README.md").read_text(encoding="utf-8")
#: Ingest and queue, but no feed files and no sending (not what is tested here).
POLL = replace(ONCE, feeds="never", digests=(), send=False, review=False)
JOB = replace(REVIEW, feeds="never", send=False)


def readme_table() -> dict[tuple[ReviewState, ReviewEvent], tuple[ReviewState, ReviewAction]]:
    section = README.split("## Review before mailing", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    table = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for event, cell in zip(header[1:], cells[1:], strict=True):
            after, action = (part.strip() for part in cell.split(","))
            table[(ReviewState(cells[0]), ReviewEvent(event))] = (
                ReviewState(after),
                ReviewAction(action),
            )
    return table


def test_the_readme_table_is_the_codes_and_lists_every_pair() -> None:
    assert readme_table() == TABLE
    assert set(TABLE) == {(s, e) for s in ReviewState for e in ReviewEvent}


def local(moment: datetime) -> str:
    return moment.astimezone(NOW.tzinfo).strftime("%H:%M %d/%m/%Y")


@pytest.fixture
def review_app(
    tmp_path: Path, write_config: Callable[..., Path], clock: ManualClock
) -> Iterator[Callable[..., App]]:
    made: list[App] = []

    def make(**review: object) -> App:
        tips, force = tmp_path / "tips", tmp_path / "force"
        tips.mkdir(exist_ok=True)
        force.mkdir(exist_ok=True)
        app = App(
            write_config(
                sources=[
                    {"path": str(tips), "settle_seconds": 0},
                    {"path": str(force), "settle_seconds": 0},
                ],
                review=review,
                digests={"alerts_per_hour": 1000},
            ),
            clock=clock,
        )
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


def test_an_advisory_from_a_source_under_review_waits_out_of_mail_and_feeds(
    review_app: Callable[..., App], tmp_path: Path
) -> None:
    app = review_app(sources=["tips"])
    reader = subscribe(app, "reader@example.org", ["chatham"], frequency="immediate")
    write_advisory(tmp_path / "tips", "a", title="Scam calls", url="https://t.example/a",
                   date=local(NOW), area="Medway")  # fmt: skip
    write_advisory(tmp_path / "force", "b", title="Car thefts", url="https://f.example/b",
                   date=local(NOW), area="Medway")  # fmt: skip
    run_cycle(app, POLL)
    held = app.store.advisories.get("https://t.example/a")
    assert held.hold is Hold.REVIEW and held.hold_detail == {"reasons": ["source"]}
    assert held.hold_source == "tips"
    # Not in the feeds or archive, not queued to anyone; the other source's goes.
    assert [i.title for i in app.store.advisories.find()] == ["Car thefts"]
    assert len(outbox_rows(app.store.engine)) == 1
    assert app.store.digests.sent_revisions([reader.id], [held.id]) == {}


def test_warnings_and_force_wide_advisories_from_an_untrusted_feed_wait(
    review_app: Callable[..., App], tmp_path: Path
) -> None:
    app = review_app(warnings=True, force_wide_untrusted=True)
    write_advisory(tmp_path / "force", "n", title="Be careful online", url="https://f.example/n",
                   date=local(NOW), body="Never give your bank details to a caller.")  # fmt: skip
    run_cycle(app, POLL)
    item = app.store.advisories.get("https://f.example/n")
    assert item.hold is Hold.REVIEW and item.hold_detail == {"reasons": ["no place"]}
    # The same force-wide advisory from a feed: untrusted unless the feed is named.
    feed = SourceConfig(feed="https://news.example/rss", name="news")
    review = app.config.review
    assert Reason.FORCE_WIDE_UNTRUSTED in reasons_for(item, feed, review)
    trusted = review.model_copy(update={"trusted": ("news",)})
    assert Reason.FORCE_WIDE_UNTRUSTED not in reasons_for(item, feed, trusted)


def test_review_names_only_configured_sources(write_config: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(review={"sources": ["tipz"]}))
    assert "review.sources names 'tipz', which is not a source's name" in str(caught.value)


def test_the_review_job_is_listed_by_alerts_schedule_only_when_review_is_on(
    review_app: Callable[..., App],
) -> None:
    assert "review" not in [row["job"] for row in schedule_table(review_app(), NOW)]
    jobs = {row["job"]: row for row in schedule_table(review_app(sources=["tips"]), NOW)}
    assert jobs["review"]["when"] == "every 1 minute"
    assert jobs["review"]["next_run"] == NOW + timedelta(minutes=1)


def test_a_source_released_after_its_wait_goes_and_one_kept_stays(
    review_app: Callable[..., App], tmp_path: Path, clock: ManualClock
) -> None:
    app = review_app(
        sources=["tips", "force"],
        wait_minutes=30,
        per_source={"force": {"then": "release", "wait_minutes": 10}},
    )
    subscribe(app, "reader@example.org", ["chatham"], frequency="immediate")
    for folder in ("tips", "force"):
        write_advisory(tmp_path / folder, folder, title=f"From {folder}", url=f"https://x.example/{folder}",
                       date=local(NOW), area="Medway")  # fmt: skip
    run_cycle(app, POLL)
    assert outbox_rows(app.store.engine) == []
    clock.advance(timedelta(minutes=9))
    run_cycle(app, JOB)
    assert outbox_rows(app.store.engine) == []
    assert app.store.runs.history("review") == []  # nothing released: nothing recorded
    clock.advance(timedelta(minutes=2))
    report = run_cycle(app, JOB)
    assert report.queued == 1 and len(app.store.runs.history("review")) == 1
    assert app.store.advisories.get("https://x.example/force").hold is None
    clock.advance(timedelta(days=2))
    run_cycle(app, JOB)
    assert app.store.advisories.get("https://x.example/tips").hold is Hold.REVIEW
    assert len(outbox_rows(app.store.engine)) == 1


# -- the state machine --------------------------------------------------------------


@dataclass
class Held:
    waiting: bool
    #: When the hold began; None for an editor's own (never released by time).
    since: datetime | None


class ReviewMachine(RuleBasedStateMachine):
    """Advisories arrive from a source under review and from one that is not; editors
    hold and release (twice at once too); the review job runs as the clock moves.
    Beside it, a model: the store must agree, nothing waiting is mailed, and each
    advisory released or free is mailed exactly once to the one subscriber."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="alerts-review-"))

    @initialize(then=st.sampled_from(["keep", "release"]))
    def start(self, then: str) -> None:
        self.clock = ManualClock(NOW)
        self.then = then
        folders = {name: self.root / name for name in ("tips", "force")}
        for folder in folders.values():
            folder.mkdir()
        self.folders = folders
        config = {
            "database": f"sqlite:///{self.root / 'alerts.db'}",
            "templates": str(REPO / "templates"),
            "sources": [{"path": str(f), "settle_seconds": 0} for f in folders.values()],
            "digests": {"alerts_per_hour": 1000, "urgent_per_hour": 1000},
            "delivery": {"backend": "maildir", "maildir": str(self.root / "maildir")},
            "security": {"secret_key_file": str(self.root / "secret.key")},
            "review": {"sources": ["tips"], "wait_minutes": 30, "then": then},
        }
        (self.root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.app = App(self.root / "config.yaml", clock=self.clock)
        self.reader = subscribe(
            self.app,
            "reader@example.org",
            ["chatham"],
            frequency="immediate",
            at=NOW - timedelta(days=1),
        )
        self.number = 0
        self.model: dict[int, Held] = {}
        self.mailed: set[int] = set()

    def teardown(self) -> None:
        if hasattr(self, "app"):
            self.app.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _queue(self) -> None:
        queue_digests(
            self.app.config.mail,
            self.app.config.digests,
            self.app.store,
            self.app.gazetteer,
            Frequency.IMMEDIATE,
            now=self.app.now(),
        )
        self.mailed |= {i for i, held in self.model.items() if not held.waiting}

    @rule(folder=st.sampled_from(["tips", "force"]))
    def arrives(self, folder: str) -> None:
        # Time moves on between any two events (a queueing covers what changed after
        # the last one, to the microsecond).
        self.clock.advance(timedelta(seconds=1))
        self.number += 1
        url = f"https://x.example/{self.number}"
        write_advisory(self.folders[folder], f"a{self.number}", title=f"Thefts number {self.number}",
                       url=url, date=local(self.clock.now()), area="Medway")  # fmt: skip
        run_cycle(self.app, POLL)
        item = self.app.store.advisories.get(url)
        waiting = folder == "tips"
        self.model[item.id] = Held(waiting, self.clock.now() if waiting else None)
        self.mailed |= {i for i, held in self.model.items() if not held.waiting}

    @precondition(lambda self: self.model)
    @rule(data=st.data(), twice=st.booleans())
    def editor_releases(self, data: st.DataObject, twice: bool) -> None:
        advisory_id = data.draw(st.sampled_from(sorted(self.model)))
        self.clock.advance(timedelta(seconds=1))
        results = [
            release_advisory(self.app.store, advisory_id, now=self.app.now()).changed
            for _ in range(2 if twice else 1)
        ]
        state = ReviewState.WAITING if self.model[advisory_id].waiting else ReviewState.FREE
        after, action = TABLE[(state, ReviewEvent.RELEASE)]
        assert results[0] == (action is ReviewAction.QUEUE)
        assert not any(results[1:]), "a second release at once changed something"
        self.model[advisory_id] = Held(after is ReviewState.WAITING, None)
        if any(results):
            self._queue()

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def editor_holds(self, data: st.DataObject) -> None:
        advisory_id = data.draw(st.sampled_from(sorted(self.model)))
        changed = hold_by_editor(
            self.app.store, self.app.config.sources, advisory_id, "jo", now=self.app.now()
        ).changed
        assert changed == (not self.model[advisory_id].waiting)
        if changed:
            self.model[advisory_id] = Held(True, None)

    @rule(minutes=st.sampled_from([1, 10, 29, 31]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule()
    def the_review_job_runs(self) -> None:
        self.clock.advance(timedelta(seconds=1))
        now = self.clock.now()
        released = settle_timeouts(self.app.store, self.app.config.review, now=now)
        event = ReviewEvent.TIME_UP_RELEASE if self.then == "release" else ReviewEvent.TIME_UP_KEEP
        expected = set()
        for advisory_id, held in self.model.items():
            if (
                held.waiting
                and held.since is not None
                and held.since + timedelta(minutes=30) <= now
            ):
                after, action = TABLE[(ReviewState.WAITING, event)]
                if action is ReviewAction.QUEUE:
                    expected.add(advisory_id)
                    self.model[advisory_id] = Held(after is ReviewState.WAITING, None)
        assert set(released) == expected
        self._queue()

    @invariant()
    def the_store_agrees_and_each_is_mailed_once_or_not_at_all(self) -> None:
        if not hasattr(self, "app"):
            return
        items = self.app.store.advisories.load(self.model)
        for advisory_id, held in self.model.items():
            assert (items[advisory_id].hold is Hold.REVIEW) == held.waiting, advisory_id
        sent = self.app.store.digests.sent_revisions([self.reader.id], list(self.model))
        assert {advisory for _, advisory in sent} == self.mailed
        # One message per advisory mailed: never a second for the same one.
        assert len(outbox_rows(self.app.store.engine)) == len(self.mailed)


ReviewMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
)
test_the_review_lifecycle = ReviewMachine.TestCase


def test_the_cli_shows_holds_and_releases_what_waits_as_the_console_does(
    review_app: Callable[..., App],
    tmp_path: Path,
    clock: ManualClock,
    run_cli: Callable[..., Result],
) -> None:
    app = review_app(sources=["tips"])
    write_advisory(tmp_path / "tips", "a", title="Scam calls", url="https://t.example/a",
                   date=local(NOW), area="Medway")  # fmt: skip
    run_cycle(app, POLL)
    config = tmp_path / "config.yaml"
    item = app.store.advisories.get("https://t.example/a")
    status = run_cli("status", config=config).stdout
    assert "HELD: 1 advisories from tips wait for review" in status
    shown = run_cli("advisories", "show", str(item.id), config=config).stdout
    assert "waiting for review since 12:00 25/11/2026" in shown
    assert "every advisory from this source waits for a person (review.sources)" in shown
    held = run_cli("advisories", "list", "--held", config=config).stdout
    assert "Scam calls [held: review]" in held
    clock.advance(timedelta(seconds=1))
    released = run_cli("advisories", "release", str(item.id), config=config)
    assert released.stdout == f"Advisory {item.id} released: the next run mails and publishes it.\n"
    again = run_cli("advisories", "release", str(item.id), config=config)
    assert "is not held for review or as a replacement; nothing to release" in again.stdout
    hold = run_cli("advisories", "hold", str(item.id), config=config)
    assert hold.stdout.startswith(f"Advisory {item.id} held for review")
    assert app.store.advisories.get(item.id).hold_detail == {
        "reasons": ["editor"],
        "by": "the command line",
    }
    assert app.store.advisories.get(item.id).hold_source == "tips"
