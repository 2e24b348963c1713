"""Holds in the console: each advisory's holds in words, an editor's hold and release
(audited, CSRF-checked, queued exactly once however many release at once), and the
sources page settling a surge."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.ingest.lifecycle import SourceState
from alerts.pipeline import Plan, run_cycle
from alerts.store.users import Role
from alerts.types import Hold
from alerts.web import create_app
from tests.conftest import NOW
from tests.support.advisory_files import write_advisory
from tests.support.console import BASE, add_user, csrf_of, signed_in
from tests.support.digests import subscribe
from tests.support.tables import outbox_rows

#: Ingest and queue alerts; no feed files, no sending.
POLL = Plan("poll", feeds="never", digests=(), send=False)


@pytest.fixture
def app(write_config: Callable[..., Path], db_url: str, tmp_path: Path) -> App:
    tips = tmp_path / "tips"
    tips.mkdir()
    app = App(
        write_config(
            database=db_url,
            site={"base_url": BASE},
            sources=[{"path": str(tips), "settle_seconds": 0, "surge_limit": 2}],
            review={"sources": ["tips"]},
        )
    )
    return app


def editor_client(app: App, name: str = "jo") -> TestClient:
    add_user(app, name, Role.EDITOR)
    return signed_in(TestClient(create_app(app), base_url=BASE), name)


def arrive(app: App, tmp_path: Path, number: int, clock: ManualClock) -> int:
    clock.advance(timedelta(seconds=1))
    url = f"https://tips.example/{number}"
    write_advisory(
        tmp_path / "tips",
        f"a{number}",
        title=f"Van thefts {number}",
        url=url,
        date=clock.now().astimezone(app.config.tz).strftime("%H:%M %d/%m/%Y"),
        area="Medway",
    )
    run_cycle(app, POLL)
    return app.store.advisories.get(url).id


def test_the_inbox_shows_why_an_advisory_waits_and_releasing_it_queues_it_once(
    app: App, tmp_path: Path, clock: ManualClock
) -> None:
    subscribe(app, "reader@example.org", ["chatham"], frequency="immediate")
    advisory_id = arrive(app, tmp_path, 1, clock)
    editor = editor_client(app)
    inbox = editor.get("/admin").text
    assert "Held (review):" in inbox and "every advisory from this source waits" in inbox
    assert outbox_rows(app.store.engine) == []
    token = csrf_of(editor, f"/admin/advisories/{advisory_id}")
    clock.advance(timedelta(seconds=1))  # a queueing covers what changed since the last
    answer = editor.post(
        f"/admin/advisories/{advisory_id}/release", data={"csrf": token}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("released=1")
    assert app.store.advisories.get(advisory_id).hold is None
    assert len(outbox_rows(app.store.engine)) == 1
    again = editor.post(f"/admin/advisories/{advisory_id}/release", data={"csrf": token})
    assert "Nothing to do: someone else held or released it first" in again.text
    assert len(outbox_rows(app.store.engine)) == 1
    (entry,) = [e for e in app.store.audit.recent() if e.action == "release"]
    assert entry.actor == "jo" and entry.target == f"advisory {advisory_id}"
    assert entry.before == {"hold": "review", "reasons": ["source"]}
    assert entry.after == {"hold": None, "queued": 1}


def test_two_editors_releasing_at_the_same_moment_queue_it_once(
    app: App, tmp_path: Path, clock: ManualClock
) -> None:
    subscribe(app, "reader@example.org", ["chatham"], frequency="immediate")
    advisory_id = arrive(app, tmp_path, 1, clock)
    clients = [editor_client(app, "jo"), editor_client(app, "sam")]
    tokens = [csrf_of(client, f"/admin/advisories/{advisory_id}") for client in clients]
    clock.advance(timedelta(seconds=1))
    start = threading.Barrier(2)
    answers: list[str] = []

    def release(client: TestClient, token: str) -> None:
        start.wait()
        answer = client.post(
            f"/admin/advisories/{advisory_id}/release",
            data={"csrf": token},
            follow_redirects=False,
        )
        answers.append(answer.headers["location"])

    threads = [
        threading.Thread(target=release, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.rsplit("?", 1)[1] for a in answers) == ["released=1", "unchanged=1"]
    assert len(outbox_rows(app.store.engine)) == 1
    assert len([e for e in app.store.audit.recent() if e.action == "release"]) == 1


def test_an_editor_holds_a_published_advisory_and_it_leaves_the_feeds_until_released(
    app: App, tmp_path: Path, clock: ManualClock
) -> None:
    app.store.holds.release_one(
        advisory_id := arrive(app, tmp_path, 1, clock), Hold.REVIEW, now=NOW
    )
    assert [i.id for i in app.store.advisories.find()] == [advisory_id]
    editor = editor_client(app)
    token = csrf_of(editor, f"/admin/advisories/{advisory_id}")
    page = editor.post(f"/admin/advisories/{advisory_id}/hold", data={"csrf": token}).text
    assert "Held: nobody is mailed and it leaves the feeds" in page and "held by jo" in page
    assert app.store.advisories.find() == []
    (entry,) = [e for e in app.store.audit.recent() if e.action == "hold"]
    assert entry.before == {"hold": None, "reasons": []}
    assert entry.after == {"hold": "review", "reasons": ["editor"]}


def test_hold_and_release_refuse_a_post_without_the_csrf_token(
    app: App, tmp_path: Path, clock: ManualClock
) -> None:
    advisory_id = arrive(app, tmp_path, 1, clock)
    editor = editor_client(app)
    for action in ("hold", "release"):
        answer = editor.post(f"/admin/advisories/{advisory_id}/{action}", data={"csrf": "forged"})
        assert answer.status_code == 403 and "This form has expired" in answer.text
    assert app.store.advisories.get(advisory_id).hold is Hold.REVIEW
    assert app.store.audit.recent() == [] or all(
        e.action not in ("hold", "release") for e in app.store.audit.recent()
    )


def test_the_sources_page_shows_a_surge_and_releases_it_into_the_outbox(
    app: App, tmp_path: Path, clock: ManualClock
) -> None:
    subscribe(app, "reader@example.org", ["chatham"], frequency="immediate")
    clock.advance(timedelta(seconds=1))
    stamp = clock.now().astimezone(app.config.tz).strftime("%H:%M %d/%m/%Y")
    for number in range(3):  # more than its surge_limit of 2
        write_advisory(tmp_path / "tips", f"s{number}", title=f"Burglary {number}",
                       url=f"https://tips.example/s{number}", date=stamp, area="Medway")  # fmt: skip
    run_cycle(app, POLL)
    editor = editor_client(app)
    page = editor.get("/admin/sources").text
    assert "surging" in page and "3 new advisories held" in page
    token = csrf_of(editor, "/admin/sources")
    clock.advance(timedelta(seconds=1))
    answer = editor.post(
        "/admin/sources/settle", data={"csrf": token, "source": "tips", "action": "release"}
    )
    assert "Released 3 advisories" in answer.text
    assert app.store.holds.lifecycles(["tips"])["tips"].state is SourceState.HEALTHY
    (entry,) = [e for e in app.store.audit.recent() if e.action == "source-release"]
    assert entry.before == {"state": "surging", "held": 3} and entry.after["advisories"] == 3
    # The batch the operator released goes: queued now, sent by this process.
    assert app.store.holds.count_held("tips", Hold.SURGE) == 0
    assert len(outbox_rows(app.store.engine)) == 3
    bad = editor.post(
        "/admin/sources/settle", data={"csrf": token, "source": "nowhere", "action": "drop"}
    )
    assert bad.status_code == 400 and "that source is not configured" in bad.text
