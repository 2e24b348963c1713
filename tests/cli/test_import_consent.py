"""``alerts subscribers import`` respects consent: new addresses are pending and each is
mailed a confirmation (within the form's mailbox limits) unless the operator states the
lawful basis with ``--consented``; then they are active and each is mailed a notice with
manage and unsubscribe links, and the basis is recorded. Addresses kept as an opt-out
(suppressed, unsubscribed, erased) stay refused either way. What was sent is read back
from the Maildir the messages were delivered to."""

from __future__ import annotations

import email
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from click.testing import Result

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.subscribers import make_subscription
from alerts.types import SubscriberStatus

BASIS = "signed the Medway watch sign-up sheet, March 2026"


@pytest.fixture
def app(config_path: Path) -> Iterator[App]:
    app = App(config_path)
    yield app
    app.close()


def listing(tmp_path: Path, *emails: str) -> str:
    path = tmp_path / "watch.csv"
    path.write_text("email,areas\n" + "".join(f"{e},medway\n" for e in emails), encoding="utf-8")
    return str(path)


def delivered(app: App, tmp_path: Path) -> list[EmailMessage]:
    """Send what is queued to the Maildir backend; the messages it holds, by recipient."""
    send_pending(app.config.delivery, app.config.mail, app.store, app.clock)
    messages = []
    for path in sorted((tmp_path / "maildir").rglob("*")):
        if path.is_file():
            message = email.message_from_bytes(path.read_bytes(), policy=default)
            assert isinstance(message, EmailMessage)
            messages.append(message)
    return sorted(messages, key=lambda m: str(m["To"]))


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def status(app: App, address: str) -> SubscriberStatus | None:
    found = app.store.subscribers.find_mailbox(address)
    return found.status if found else None


def test_an_import_makes_new_addresses_pending_and_mails_each_a_confirmation(
    app: App, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    result = run_cli(
        "subscribers", "import", listing(tmp_path, "ann@example.org", "bob@example.org")
    )
    assert result.exit_code == 0, result.output
    assert "2 added" in result.stdout
    assert "pending until they confirm: 2 mailed a confirmation" in result.stdout
    assert status(app, "ann@example.org") is SubscriberStatus.PENDING
    assert status(app, "bob@example.org") is SubscriberStatus.PENDING

    ann, bob = delivered(app, tmp_path)
    assert str(ann["To"]) == "ann@example.org" and str(bob["To"]) == "bob@example.org"
    for message in (ann, bob):
        assert str(message["Subject"]).startswith("Confirm your")
        assert "/confirm?token=" in text_of(message)


def test_import_confirmations_keep_the_forms_mailbox_limits(
    app: App, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    # Two sub-addresses of one mailbox: one message within the 10-minute gap.
    result = run_cli(
        "subscribers",
        "import",
        listing(tmp_path, "jo+watch@example.org", "jo+home@example.org"),
        "--json",
    )
    report = json.loads(result.stdout)
    assert report["added"] == 2 and report["mailed"] == 1 and report["held_by_limit"] == 1
    [message] = delivered(app, tmp_path)
    assert str(message["To"]) == "jo+watch@example.org"


def test_consented_imports_are_active_with_a_notice_and_the_basis_is_recorded(
    app: App, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    result = run_cli(
        "subscribers", "import", listing(tmp_path, "ann@example.org"), "--consented", BASIS
    )
    assert result.exit_code == 0, result.output
    assert "active (consent stated): 1 mailed a notice" in result.stdout
    assert status(app, "ann@example.org") is SubscriberStatus.ACTIVE

    [notice] = delivered(app, tmp_path)
    assert str(notice["Subject"]).startswith("You were added to")
    text = text_of(notice)
    assert BASIS in text
    assert "/manage?token=" in text and "/unsubscribe?token=" in text
    html = notice.get_body(("html",))
    assert html is not None and BASIS in str(html.get_content())

    [entry] = [e for e in app.store.audit.recent() if e.action == "import-consented"]
    assert entry.actor == "cli" and entry.target == "watch.csv"
    assert entry.after == {"basis": BASIS, "added": 1}


def test_consented_needs_the_basis_in_words(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    result = run_cli(
        "subscribers", "import", listing(tmp_path, "ann@example.org"), "--consented", " "
    )
    assert result.exit_code == 2
    assert "--consented needs the lawful basis in words" in result.output


@pytest.mark.parametrize("consented", [False, True])
def test_opted_out_and_erased_addresses_stay_refused_either_way(
    app: App, run_cli: Callable[..., Result], tmp_path: Path, consented: bool
) -> None:
    now = app.now()
    for address in ("left@example.org", "bounced@example.org", "erased@example.org"):
        app.store.subscribers.add(
            make_subscription(app.gazetteer, address, ["medway"], frequency="daily"), now=now
        )
    found = [
        app.store.subscribers.find_mailbox(a) for a in ("left@example.org", "bounced@example.org")
    ]
    assert found[0] is not None and found[1] is not None
    app.store.subscribers.unsubscribe(found[0].id, now=now)
    app.store.subscribers.suppress(found[1].id, now=now)
    assert run_cli("subscribers", "erase", "erased@example.org", "--yes").exit_code == 0
    delivered(app, tmp_path)  # nothing was queued for them

    flags = ["--consented", BASIS] if consented else []
    result = run_cli(
        "subscribers",
        "import",
        listing(tmp_path, "left@example.org", "bounced@example.org", "erased@example.org"),
        *flags,
    )
    assert result.exit_code == 0, result.output
    assert "0 added" in result.stdout and "3 skipped" in result.stdout
    assert status(app, "left@example.org") is SubscriberStatus.UNSUBSCRIBED
    assert status(app, "bounced@example.org") is SubscriberStatus.SUPPRESSED
    assert status(app, "erased@example.org") is None
    assert delivered(app, tmp_path) == []


def test_confirmations_the_mailbox_limit_held_back_go_once_it_allows_and_only_once(
    app: App, run_cli: Callable[..., Result], tmp_path: Path, clock: ManualClock
) -> None:
    """Four sub-addresses of one mailbox on a watch's list: one confirmation at once,
    the others each when the form's limit allows (10 minutes apart, 3 a day), each
    exactly once, however often the sender runs and the list is imported again."""
    addresses = [f"jo+{tag}@example.org" for tag in ("watch", "home", "road", "shop")]
    watch, home, road, _shop = addresses
    result = run_cli("subscribers", "import", listing(tmp_path, *addresses))
    assert result.exit_code == 0, result.output
    assert "1 mailed a confirmation; 3 to go later, as the mailbox limit allows" in result.stdout

    def confirmed_to() -> list[str]:
        return sorted(str(message["To"]) for message in delivered(app, tmp_path))

    assert confirmed_to() == [watch]
    clock.advance(timedelta(minutes=9))
    assert confirmed_to() == [watch]
    clock.advance(timedelta(minutes=1))
    assert confirmed_to() == sorted([watch, home])
    clock.advance(timedelta(minutes=10))
    assert confirmed_to() == sorted([watch, home, road])
    # Three today: the fourth waits for the day's window to end.
    clock.advance(timedelta(hours=23, minutes=39))
    assert confirmed_to() == sorted([watch, home, road])
    again = run_cli("subscribers", "import", listing(tmp_path, *addresses), "--json")
    assert json.loads(again.stdout)["added"] == 0
    clock.advance(timedelta(minutes=1))
    assert confirmed_to() == sorted(addresses)
    clock.advance(timedelta(days=2))
    run_cli("subscribers", "import", listing(tmp_path, *addresses))
    assert confirmed_to() == sorted(addresses)
    for address in addresses:
        assert status(app, address) is SubscriberStatus.PENDING
    for message in delivered(app, tmp_path):
        assert "/confirm?token=" in text_of(message)
