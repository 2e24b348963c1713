"""Who gets what: watermarks, the matching rule, updates, withdrawals, urgent alerts.
Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from alerts.digest import queue_digests
from alerts.digest.queue import PlannedMessage
from alerts.types import Frequency, Priority, Status, SubscriberStatus
from tests.support import NOW
from tests.support.digests import (
    DAY,
    HOUR,
    advisory,
    built,
    counts,
    parts,
    save,
    subjects,
    subscribe,
    watermarks,
)
from tests.support.sections import Stages
from tests.support.tables import set_columns, table_rows


def test_nothing_new_means_no_email_and_no_digest(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    save(stages, advisory("dover", areas=["dover"]))
    report = queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    assert (report.messages, report.digests) == (0, 0)
    assert counts(stages) == {"digests": 0, "outbox": 0, "subscriber_advisories": 0}
    assert watermarks(stages)["jane@example.org"] == NOW


def test_daily_subscriber_gets_one_digest_of_everything_new_newest_first(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    save(stages, advisory("older", published=NOW - 5 * HOUR))
    save(stages, advisory("newer", published=NOW - 2 * HOUR))
    report = queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    assert (report.messages, report.advisories, report.subscribers) == (1, 2, 1)
    assert subjects(stages) == {"jane@example.org": ["2 new alerts for Medway"]}
    [(_, _, message)] = built(stages)
    text, html = parts(message)
    assert text.index("Advisory newer") < text.index("Advisory older")
    assert html.index("Advisory newer") < html.index("Advisory older")


def test_immediate_subscriber_gets_one_email_per_advisory(stages: Stages) -> None:
    subscribe(stages, "now@example.org", ["medway"], frequency="immediate")
    subscribe(stages, "daily@example.org", ["medway"], frequency="daily")
    save(stages, advisory("first", published=NOW - 3 * HOUR))
    save(stages, advisory("second", published=NOW - 2 * HOUR))
    report = queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    assert report.messages == 2
    assert subjects(stages) == {"now@example.org": ["Advisory second", "Advisory first"]}


def test_a_second_run_sends_nothing_twice(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    save(stages, advisory("one"))
    assert (
        queue_digests(
            stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
        ).messages
        == 1
    )
    assert (
        queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.DAILY,
            now=NOW + DAY,
        ).messages
        == 0
    )
    save(stages, advisory("two"), at=NOW + DAY + HOUR)
    assert (
        queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.DAILY,
            now=NOW + 2 * DAY,
        ).messages
        == 1
    )
    assert subjects(stages)["jane@example.org"] == ["1 new alert for Medway"] * 2


def test_a_missed_run_leaves_no_gap(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    save(stages, advisory("monday"), at=NOW - HOUR)
    save(stages, advisory("tuesday", published=NOW + DAY - 2 * HOUR), at=NOW + DAY - HOUR)
    # No run on Monday: Tuesday's digest holds both.
    assert (
        queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.DAILY,
            now=NOW + DAY,
        ).advisories
        == 2
    )


def test_watermark_starts_at_confirmation_so_a_new_subscriber_gets_no_old_mail(
    stages: Stages,
) -> None:
    save(stages, advisory("before"), at=NOW - 3 * HOUR)
    subscribe(stages, "new@example.org", ["medway"], at=NOW - 2 * HOUR)
    save(stages, advisory("after"), at=NOW - HOUR)
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(_, _, message)] = built(stages)
    text, _ = parts(message)
    assert "Advisory after" in text and "Advisory before" not in text


def test_backlog_published_long_before_it_was_ingested_is_not_mailed(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"], at=NOW - 10 * DAY)
    save(stages, advisory("backlog", published=NOW - 30 * DAY), at=NOW - HOUR)
    save(stages, advisory("recent", published=NOW - 6 * DAY), at=NOW - HOUR)
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(_, _, message)] = built(stages)
    text, _ = parts(message)
    assert "Advisory recent" in text and "Advisory backlog" not in text


def test_updated_advisory_comes_again_marked_updated(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    item = advisory("changing")
    save(stages, item)
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    # A day after it was first stored: sooner, the change would be held (one update a day).
    save(stages, replace(item, body_html="<p>New advice: do not pay.</p>"), at=NOW + DAY - HOUR)
    report = queue_digests(
        stages.mail,
        stages.digests,
        stages.store,
        stages.gazetteer,
        Frequency.DAILY,
        now=NOW + DAY,
    )
    assert report.messages == 1
    assert subjects(stages)["jane@example.org"][-1] == "1 updated alert for Medway"
    *_, (_, _, message) = built(stages)
    text, html = parts(message)
    assert "Updated" in text and ">Updated<" in html


def test_unchanged_reingest_is_not_sent_again(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    item = advisory("same")
    save(stages, item)
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    save(stages, item, at=NOW + HOUR)
    assert (
        queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.DAILY,
            now=NOW + DAY,
        ).messages
        == 0
    )


def test_withdrawn_advisory_is_never_sent_again(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    subscribe(stages, "late@example.org", ["medway"], at=NOW - 3 * HOUR)
    item = advisory("withdrawn")
    save(stages, item, at=NOW - 2 * HOUR)
    # Changed materially and withdrawn before anyone was sent it.
    save(stages, replace(item, title="Corrected", status=Status.WITHDRAWN), at=NOW - HOUR)
    assert (
        queue_digests(
            stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
        ).messages
        == 0
    )
    assert (
        queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.IMMEDIATE,
            now=NOW,
        ).messages
        == 0
    )


def test_urgent_advisory_goes_at_once_to_every_frequency_and_not_again_in_the_digest(
    stages: Stages,
) -> None:
    for frequency in ("immediate", "daily", "weekly"):
        subscribe(stages, f"{frequency}@example.org", ["chatham"], frequency=frequency)
    subscribe(stages, "calm@example.org", ["medway"], frequency="daily", urgent=False)
    subscribe(stages, "dover@example.org", ["dover"], frequency="daily")
    save(stages, advisory("urgent", priority=Priority.URGENT, title="Flood warning"))
    save(stages, advisory("ordinary", published=NOW - 3 * HOUR))
    report = queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    queued = subjects(stages)
    assert queued["daily@example.org"] == ["Urgent: Flood warning"]
    assert queued["weekly@example.org"] == ["Urgent: Flood warning"]
    assert queued["immediate@example.org"] == ["Urgent: Flood warning", "Advisory ordinary"]
    assert "calm@example.org" not in queued and "dover@example.org" not in queued
    assert report.messages == 4
    # The urgent run moves no daily watermark: the ordinary advisory waits for the digest...
    queue_digests(
        stages.mail,
        stages.digests,
        stages.store,
        stages.gazetteer,
        Frequency.DAILY,
        now=NOW + HOUR,
    )
    queued = subjects(stages)
    assert queued["daily@example.org"][-1] == "1 new alert for Chatham"
    assert queued["calm@example.org"] == ["2 new alerts for Medway"]
    # ...and the urgent one is not repeated in it, nor sent urgently twice.
    assert (
        queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.IMMEDIATE,
            now=NOW + 2 * HOUR,
        ).messages
        == 0
    )
    message = [
        m for _, _, m in built(stages) if m["To"].addresses[0].addr_spec == "daily@example.org"
    ][-1]
    text, _ = parts(message)
    assert "Flood warning" not in text and "Advisory ordinary" in text


def test_overlapping_areas_get_an_advisory_once(stages: Stages) -> None:
    subscribe(stages, "both@example.org", ["medway", "chatham"], frequency="daily")
    subscribe(stages, "quick@example.org", ["ME4", "chatham"], frequency="immediate")
    save(stages, advisory("medway-wide", areas=["medway"]))
    save(stages, advisory("in-chatham", areas=["chatham"]))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    queued = subjects(stages)
    assert queued["both@example.org"] == ["2 new alerts for Chatham and Medway"]
    assert sorted(queued["quick@example.org"]) == ["Advisory in-chatham", "Advisory medway-wide"]
    [digest] = [
        m for _, _, m in built(stages) if m["To"].addresses[0].addr_spec == "both@example.org"
    ]
    text, html = parts(digest)
    for name in ("Advisory medway-wide", "Advisory in-chatham"):
        assert text.count(name) == 1 and html.count(f">{name}</a>") == 1


def test_matching_rule_decides_who_gets_what(stages: Stages) -> None:
    subscribe(stages, "chatham@example.org", ["chatham"])
    subscribe(stages, "dover@example.org", ["dover"])
    save(stages, advisory("medway-news", areas=["medway"]))
    save(stages, advisory("force-wide", areas=["kent"]))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    queued = subjects(stages)
    assert queued["chatham@example.org"] == ["2 new alerts for Chatham"]
    assert queued["dover@example.org"] == ["1 new alert for Dover"]


def test_digest_groups_by_area_with_force_wide_advice_in_its_own_section(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway", "dover"])
    save(stages, advisory("force-wide", areas=["kent"], published=NOW - HOUR))
    save(stages, advisory("dover-news", areas=["dover"], published=NOW - 2 * HOUR))
    save(stages, advisory("medway-news", areas=["medway"], published=NOW - 3 * HOUR))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(_, _, message)] = built(stages)
    text, html = parts(message)
    for body in (text, html):
        body = body[body.index("</h1>" if body is html else "====") :]  # past the preheader
        order = [
            body.index(s)
            for s in (
                "Dover",
                "Advisory dover-news",
                "Medway",
                "Advisory medway-news",
                "Across Kent",
                "Advisory force-wide",
            )
        ]
        assert order == sorted(order)
    assert ">Across Kent</h2>" in html


def test_only_active_subscribers_are_mailed(stages: Stages) -> None:
    gone = subscribe(stages, "gone@example.org", ["medway"])
    stages.store.subscribers.unsubscribe(gone.id, now=NOW - HOUR)
    subscribe(stages, "pending@example.org", ["medway"], status=SubscriberStatus.PENDING)
    save(stages, advisory("news"))
    assert (
        queue_digests(
            stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
        ).messages
        == 0
    )


def test_weekly_run_leaves_daily_subscribers_alone(stages: Stages) -> None:
    subscribe(stages, "daily@example.org", ["medway"], frequency="daily")
    subscribe(stages, "weekly@example.org", ["medway"], frequency="weekly")
    save(stages, advisory("news"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.WEEKLY, now=NOW
    )
    assert subjects(stages) == {"weekly@example.org": ["1 new alert for Medway"]}
    assert watermarks(stages)["daily@example.org"] == NOW - DAY


def test_dry_run_writes_nothing_but_says_who_would_get_what(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    save(stages, advisory("news", title="Phone scam"))
    planned: list[PlannedMessage] = []
    report = queue_digests(
        stages.mail,
        stages.digests,
        stages.store,
        stages.gazetteer,
        Frequency.DAILY,
        now=NOW,
        dry_run=True,
        on_message=planned.append,
    )
    assert report.dry_run and report.messages == 1
    assert [(p.email, p.subject) for p in planned] == [
        ("jane@example.org", "1 new alert for Medway")
    ]
    assert counts(stages) == {"digests": 0, "outbox": 0, "subscriber_advisories": 0}
    assert watermarks(stages)["jane@example.org"] == NOW - DAY


def test_each_batch_records_what_each_subscriber_was_sent(stages: Stages) -> None:
    jane = subscribe(stages, "jane@example.org", ["medway"])
    advisory_id = save(stages, advisory("news"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    rows = table_rows(stages.store.engine, "subscriber_advisories")
    revision = stages.store.advisories.get(advisory_id).revision
    assert [(r["subscriber_id"], r["advisory_id"], r["revision"]) for r in rows] == [
        (jane.id, advisory_id, revision)
    ]
    assert watermarks(stages)["jane@example.org"] == NOW


def test_expired_advisory_is_not_mailed(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    advisory_id = save(stages, advisory("expired"))
    set_columns(stages.store.engine, "advisories", {"expires_at": NOW - HOUR / 2}, id=advisory_id)
    assert (
        queue_digests(
            stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
        ).messages
        == 0
    )
