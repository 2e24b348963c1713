"""Personal data kept only as long as it serves, through the CLI an operator uses:
``alerts purge`` applies ``retention:``; ``alerts subscribers erase`` leaves no trace of
an address in any table (only a keyed hash) and nothing brings it back but its owner;
``alerts subscribers export-data`` prints all that is held."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from click.testing import Result
from prometheus_client.parser import text_string_to_metric_families

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.digest import queue_digests
from alerts.metrics import render_metrics
from alerts.store.subscribers import PENDING, SUPPRESSED, UNSUBSCRIBED
from alerts.subscribers import make_subscription
from alerts.subscribers.mail import send_confirmation
from alerts.types import Frequency
from tests.support import NOW
from tests.support.digests import advisory, save, subscribe
from tests.support.tables import outbox_rows, row_counts, table_rows

ADDRESS = "Jo.Bloggs@Example.org"


def everything(app: App) -> str:
    """Every row of every table, as text, in lower case."""
    return repr(
        [table_rows(app.store.engine, name) for name in app.store.fixtures.table_names()]
    ).lower()


def seeded(app: App) -> None:
    """The address as it leaves traces: a subscription with areas, a confirmation mail
    (its stored copy names the address), a digest sent, and a run that named it."""
    jo = subscribe(app, ADDRESS, ["medway", "dover"], frequency="daily")
    send_confirmation(app.config.mail, app.store, jo, ["Medway", "Dover"], now=NOW)
    subscribe(app, "other@example.org", ["medway"], frequency="daily")
    save(app, advisory("thefts", title="Catalytic converter thefts"))
    queue_digests(
        app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency.DAILY, now=NOW
    )
    assert send_pending(app.config.delivery, app.config.mail, app.store, app.clock).sent == 3
    app.store.runs.add(
        "send", NOW, NOW, ok=True, summary={"suppressed": [ADDRESS.lower()], "sent": 3}
    )


def test_erase_leaves_no_trace_of_the_address_and_an_import_cannot_bring_it_back(
    write_config: Callable[..., Path], run_cli: Callable[..., Result], tmp_path: Path, db_url: str
) -> None:
    config = write_config(database=db_url)
    app = App(config)
    try:
        seeded(app)
        assert ADDRESS.lower() in everything(app)
        result = run_cli("subscribers", "erase", "JO.BLOGGS@example.org", "--yes", config=config)
        assert result.exit_code == 0, result.output
        assert result.output.startswith(
            "Erased JO.BLOGGS@example.org: 1 subscription, 2 delivered messages in "
        )
        assert result.output.endswith(" and all that named it; only a keyed hash is kept.\n")
        maildir = "".join(
            p.read_text("utf-8") for p in (tmp_path / "maildir").rglob("*") if p.is_file()
        )
        assert "other@example.org" in maildir and "jo.bloggs" not in maildir.lower()
        assert ADDRESS.lower() not in everything(app)
        assert "jo.bloggs" not in everything(app)
        # The other subscriber and the shared digest are untouched; only a hash is kept.
        assert app.store.subscribers.find_mailbox("other@example.org") is not None
        assert row_counts(app.store.engine, "opt_outs")["opt_outs"] == 1
        assert app.store.retention.hashed_opt_out(app.config.security, ADDRESS) == "erased"

        listing = tmp_path / "list.csv"
        listing.write_text(f"email,areas\n{ADDRESS}\tmedway\n".replace("\t", ","), encoding="utf-8")
        result = run_cli("subscribers", "import", str(listing), config=config)
        assert result.exit_code == 0, result.output
        assert "kept as a keyed hash" in result.output and "0 added" in result.output
        result = run_cli(
            "subscribers", "add", "jo.bloggs@example.org", "--area", "medway", config=config
        )
        # The operator's add only asks the owner: a new pending record and a confirmation.
        assert result.exit_code == 0
        assert "it was erased, so only its owner can subscribe again" in result.output
        found = app.store.subscribers.find_mailbox(ADDRESS)
        assert found is not None and found.status is PENDING
    finally:
        app.close()


def test_export_data_prints_all_that_is_held_about_an_address(
    write_config: Callable[..., Path], run_cli: Callable[..., Result], db_url: str
) -> None:
    config = write_config(database=db_url)
    app = App(config)
    try:
        seeded(app)
        result = run_cli("subscribers", "export-data", "jo.bloggs@EXAMPLE.org", config=config)
        assert result.exit_code == 0, result.output
        held = json.loads(result.output[result.output.index("{") :])
        [subscription] = held["subscriptions"]
        assert subscription["email"] == "Jo.Bloggs@example.org" and sorted(
            subscription["areas"]
        ) == ["dover", "medway"]
        assert subscription["status"] == "active" and subscription["frequency"] == "daily"
        assert [m["kind"] for m in held["messages"]] == ["confirm", "daily"]
        assert {m["status"] for m in held["messages"]} == {"sent"}
        assert [a["title"] for a in held["advisories_sent"]] == ["Catalytic converter thefts"]
        assert held["kept_as_hash"] is None
        run_cli("subscribers", "erase", ADDRESS, "--yes", config=config)
        after = json.loads(run_cli("subscribers", "export-data", ADDRESS, config=config).output)
        assert (
            after["subscriptions"] == []
            and after["messages"] == []
            and after["kept_as_hash"] == "erased"
        )
    finally:
        app.close()


def test_purge_with_sent_days_0_leaves_no_sent_message(
    write_config: Callable[..., Path], run_cli: Callable[..., Result], db_url: str
) -> None:
    config = write_config(database=db_url, retention={"sent_days": 0})
    app = App(config)
    try:
        seeded(app)
        pending = app.store.subscribers.add(
            make_subscription(app.gazetteer, "later@example.org", ["kent"]), now=NOW, status=PENDING
        )
        send_confirmation(
            app.config.mail, app.store, pending, ["Kent"], now=NOW
        )  # queued, not sent yet
        result = run_cli("purge", "--json", config=config)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output[result.output.index("{") :])["sent_messages"] == 3
        assert [row["status"] for row in outbox_rows(app.store.engine)] == [
            "pending"
        ]  # not sent: kept
        # The stored copies of the sent messages went with them (a confirmation names its address).
        assert ADDRESS.lower() not in repr(table_rows(app.store.engine, "digests")).lower()
        assert [row["kind"] for row in table_rows(app.store.engine, "digests")] == ["confirm"]
    finally:
        app.close()


def latency_histogram(app: App) -> dict[tuple[str, str], float]:
    """/metrics' arrival-to-relay histogram as Prometheus parses it: (sample, kind) to value."""
    text = render_metrics(app.store, lambda: NOW).decode()
    [family] = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "alerts_arrival_to_relay_seconds"
    ]
    return {
        (s.name.rsplit("_", 1)[-1] + s.labels.get("le", ""), s.labels["kind"]): s.value
        for s in family.samples
    }


def test_purging_sent_messages_never_lowers_the_latency_histogram(
    write_config: Callable[..., Path], run_cli: Callable[..., Result], db_url: str
) -> None:
    """Prometheus reads any drop in a histogram's count or sum as a counter reset."""
    config = write_config(database=db_url, retention={"sent_days": 0})
    app = App(config)
    try:
        seeded(app)
        before = latency_histogram(app)
        assert before[("count", "confirm")] == 1 and before[("count", "daily")] == 2
        assert before[("bucket+Inf", "daily")] == 2 and before[("sum", "daily")] > 0
        result = run_cli("purge", "--json", config=config)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output[result.output.index("{") :])["sent_messages"] == 3
        assert latency_histogram(app) == before
        # And it goes on counting from there: one more sent is one more counted.
        newcomer = subscribe(app, "newcomer@example.org", ["kent"], frequency="daily")
        send_confirmation(app.config.mail, app.store, newcomer, ["Kent"], now=NOW)
        assert send_pending(app.config.delivery, app.config.mail, app.store, app.clock).sent == 1
        after = latency_histogram(app)
        assert (
            after[("count", "confirm")] == 2
            and after[("sum", "confirm")] >= before[("sum", "confirm")]
        )
        assert after[("count", "daily")] == 2
    finally:
        app.close()


def test_purge_drops_unconfirmed_sign_ups_and_reduces_opt_outs_to_a_keyed_hash(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    db_url: str,
    clock: ManualClock,
) -> None:
    config = write_config(database=db_url, retention={"pending_days": 7, "unsubscribed_days": 28})
    app = App(config)
    try:
        waiting = app.store.subscribers.add(
            make_subscription(app.gazetteer, "waiting@example.org", ["kent"]),
            now=NOW,
            status=PENDING,
        )
        left = subscribe(app, "left@example.org", ["dover"])
        app.store.subscribers.unsubscribe(left.id, now=NOW)
        bounced = subscribe(app, "Bounced@example.org", ["dover"])
        app.store.subscribers.suppress(bounced.id, now=NOW)
        clock.set(NOW + timedelta(days=6))
        run_cli("purge", config=config)
        assert app.store.subscribers.find_mailbox("waiting@example.org") is not None  # 6 days: kept
        clock.set(NOW + timedelta(days=8))
        result = run_cli("purge", config=config)
        assert "1 unconfirmed sign-ups" in result.output
        assert app.store.subscribers.find_mailbox(waiting.email) is None
        assert app.store.subscribers.find_mailbox("left@example.org").status is UNSUBSCRIBED  # type: ignore[union-attr]
        clock.set(NOW + timedelta(days=29))
        result = run_cli("purge", config=config)
        assert "2 opted-out addresses reduced to a keyed hash" in result.output
        assert "left@example.org" not in everything(
            app
        ) and "bounced@example.org" not in everything(app)
        assert (
            app.store.retention.hashed_opt_out(app.config.security, "LEFT@example.org")
            == UNSUBSCRIBED.value
        )
        assert (
            app.store.retention.hashed_opt_out(app.config.security, "bounced@example.org")
            == SUPPRESSED.value
        )
        # Still never re-added: an import skips both; the form never mails the suppressed one.
        listing = Path(config).parent / "back.csv"
        listing.write_text(
            "email,areas\nleft@example.org,kent\nbounced@example.org,kent\n", encoding="utf-8"
        )
        result = run_cli("subscribers", "import", str(listing), config=config)
        assert result.output.count("kept as a keyed hash") == 2 and "0 added" in result.output
    finally:
        app.close()
