"""Subscriber records, on SQLite and PostgreSQL: validation, the status changes PECR
cares about, bounces, and streaming for the digest stage."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from alerts.areas import Gazetteer
from alerts.errors import NotFound, UnknownArea
from alerts.store import Store
from alerts.store.subscribers import ACTIVE, PENDING, SUPPRESSED, UNSUBSCRIBED
from alerts.subscribers import (
    InvalidSubscriber,
    OptedOut,
    Preferences,
    make_subscription,
    normalise_email,
)
from alerts.types import Frequency, Subscriber
from tests.support import NOW


def subscribe(
    store: Store, gazetteer: Gazetteer, email: str, *areas: str, **kwargs: Any
) -> Subscriber:
    status = kwargs.pop("status", ACTIVE)
    now = kwargs.pop("now", NOW)
    return store.subscribers.add(
        make_subscription(gazetteer, email, areas or ("medway",), **kwargs), now=now, status=status
    )


# -- validation -------------------------------------------------------------------


def test_an_address_keeps_its_local_part_and_lowercases_its_domain() -> None:
    assert normalise_email("  Jo.Bloggs@Example.ORG ") == "Jo.Bloggs@example.org"


@pytest.mark.parametrize(
    "bad", ["", "no-at-sign", "two@@example.org", "a@b", "x@example.org\r\nBcc: y@example.org"]
)
def test_an_invalid_address_is_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(InvalidSubscriber) as caught:
        normalise_email(bad)
    assert "\n" not in str(caught.value)


def test_addresses_are_checked_without_dns() -> None:
    # A domain that does not exist is still a well-formed address: no lookups are made.
    assert normalise_email("someone@no-such-host.invalid-tld-for-tests.org").endswith(".org")


def test_areas_accept_slugs_names_and_postcode_districts_without_repeats(
    gazetteer: Gazetteer,
) -> None:
    subscription = make_subscription(
        gazetteer, "a@example.org", ["ME4", "Medway", "chatham", "CT1 1AA"]
    )
    assert set(subscription.areas) == {"medway", "chatham", "canterbury"}
    assert len(subscription.areas) == 3


def test_an_unknown_area_suggests_the_nearest(gazetteer: Gazetteer) -> None:
    with pytest.raises(UnknownArea, match="did you mean 'medway'"):
        make_subscription(gazetteer, "a@example.org", ["medwy"])


def test_a_subscription_needs_an_area_and_a_known_frequency(gazetteer: Gazetteer) -> None:
    with pytest.raises(InvalidSubscriber, match="at least one area"):
        make_subscription(gazetteer, "a@example.org", [" ", ""])
    with pytest.raises(InvalidSubscriber, match="unknown frequency 'hourly'"):
        make_subscription(gazetteer, "a@example.org", ["kent"], frequency="hourly")
    assert (
        make_subscription(gazetteer, "a@example.org", ["kent"], frequency=" Weekly ").frequency
        is Frequency.WEEKLY
    )


def test_a_display_name_cannot_carry_a_header(gazetteer: Gazetteer) -> None:
    subscription = make_subscription(
        gazetteer, "a@example.org", ["kent"], name="Jo\r\nBcc: evil@example.org\x00"
    )
    assert subscription.name == "Jo Bcc: evil@example.org"
    assert make_subscription(gazetteer, "a@example.org", ["kent"], name="  ").name is None


# -- records ----------------------------------------------------------------------


def test_an_active_subscriber_starts_their_watermark_when_added(
    store: Store, gazetteer: Gazetteer
) -> None:
    subscriber = subscribe(
        store, gazetteer, "Jo@Example.org", "ME4", "chatham", frequency="weekly", name="Jo"
    )
    assert subscriber.status is ACTIVE
    assert subscriber.watermark == NOW and subscriber.confirmed_at == NOW
    assert subscriber.email == "Jo@example.org"
    assert subscriber.areas == ("chatham",)  # ME4 stands for Chatham
    assert (
        subscriber.frequency is Frequency.WEEKLY
        and subscriber.urgent
        and not subscriber.forwardable
    )
    assert store.subscribers.get(subscriber.id) == subscriber


def test_the_domain_is_compared_without_case(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "Jo@example.org")
    assert store.subscribers.find("Jo@EXAMPLE.ORG") == subscriber
    assert (
        store.subscribers.find("jo@example.org") is None
    )  # the local part is the owner's business
    with pytest.raises(InvalidSubscriber, match="already subscribed"):
        subscribe(store, gazetteer, "Jo@Example.Org")


def test_a_missing_subscriber_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.subscribers.get(999)
    assert store.subscribers.find("nobody@example.org") is None
    assert store.subscribers.find("not an address") is None


def test_a_pending_subscriber_has_no_watermark_until_confirmed(
    store: Store, gazetteer: Gazetteer
) -> None:
    subscriber = subscribe(store, gazetteer, "p@example.org", status=PENDING)
    assert subscriber.status is PENDING and subscriber.watermark is None
    later = NOW + timedelta(days=3)
    assert store.subscribers.confirm(subscriber.id, now=later)
    confirmed = store.subscribers.get(subscriber.id)
    assert confirmed.status is ACTIVE
    assert confirmed.watermark == later and confirmed.confirmed_at == later
    # Confirming again moves nothing: the watermark is theirs now.
    assert not store.subscribers.confirm(subscriber.id, now=later + timedelta(days=1))
    assert store.subscribers.get(subscriber.id).watermark == later


def test_unsubscribing_keeps_the_row_and_a_confirm_link_cannot_undo_it(
    store: Store, gazetteer: Gazetteer
) -> None:
    subscriber = subscribe(store, gazetteer, "u@example.org", status=PENDING)
    assert store.subscribers.unsubscribe(subscriber.id, now=NOW)
    assert not store.subscribers.unsubscribe(subscriber.id, now=NOW)
    assert store.subscribers.get(subscriber.id).status is UNSUBSCRIBED
    assert not store.subscribers.confirm(subscriber.id, now=NOW)
    assert store.subscribers.get(subscriber.id).status is UNSUBSCRIBED


def test_an_opted_out_address_is_never_added_back(store: Store, gazetteer: Gazetteer) -> None:
    gone = subscribe(store, gazetteer, "gone@example.org")
    store.subscribers.unsubscribe(gone.id, now=NOW)
    bounced = subscribe(store, gazetteer, "bounced@example.org")
    store.subscribers.suppress(bounced.id, now=NOW)
    for address in ("gone@example.org", "bounced@EXAMPLE.org"):
        subscription = make_subscription(gazetteer, address, ["kent"])
        with pytest.raises(OptedOut, match="not added again"):
            store.subscribers.save(subscription, now=NOW)
        with pytest.raises(OptedOut):
            store.subscribers.add(subscription, now=NOW)
    assert store.subscribers.get(gone.id).status is UNSUBSCRIBED
    assert store.subscribers.get(bounced.id).status is SUPPRESSED


def test_save_updates_preferences_but_never_the_status(store: Store, gazetteer: Gazetteer) -> None:
    pending = subscribe(store, gazetteer, "p@example.org", status=PENDING, name="Pat")
    changed, outcome = store.subscribers.save(
        make_subscription(gazetteer, "p@example.org", ["dover"], frequency="immediate"), now=NOW
    )
    assert outcome == "updated"
    assert changed.status is PENDING and changed.areas == ("dover",) and changed.name == "Pat"
    _same, outcome = store.subscribers.save(
        make_subscription(gazetteer, "p@example.org", ["dover"], frequency="immediate"), now=NOW
    )
    assert outcome == "unchanged"
    assert pending.id == changed.id


def test_preferences_change_only_what_is_given(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "m@example.org", "medway", frequency="daily", name="M")
    updated = store.subscribers.update(
        subscriber.id, Preferences(areas=("dover", "kent"), urgent=False)
    )
    assert updated.areas == ("dover", "kent") and not updated.urgent
    assert updated.frequency is Frequency.DAILY and updated.name == "M" and updated.status is ACTIVE
    with pytest.raises(NotFound):
        store.subscribers.update(999, Preferences(urgent=False))


def test_hard_bounces_suppress_the_address_at_the_limit(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "b@example.org")
    assert store.subscribers.record_bounce(subscriber.id, 3, now=NOW) is False
    assert store.subscribers.record_bounce(subscriber.id, 3, now=NOW) is False
    assert (
        store.subscribers.record_bounce(subscriber.id, 3, now=NOW) is True
    )  # this one suppressed it
    assert (
        store.subscribers.record_bounce(subscriber.id, 3, now=NOW) is False
    )  # already suppressed: not news
    after = store.subscribers.get(subscriber.id)
    assert after.status is SUPPRESSED and after.bounces == 4
    assert not store.subscribers.unsubscribe(subscriber.id, now=NOW)  # suppressed stays suppressed
    with pytest.raises(NotFound):
        store.subscribers.record_bounce(999, 3, now=NOW)


def test_a_web_sign_up_is_pending_and_only_its_owner_can_come_back(
    store: Store, gazetteer: Gazetteer
) -> None:
    subscription = make_subscription(gazetteer, "w@example.org", ["chatham"])
    new, send = store.subscribers.resubscribe_pending(subscription, now=NOW)
    assert new.status is PENDING and send
    store.subscribers.confirm(new.id, now=NOW)
    active, send = store.subscribers.resubscribe_pending(
        make_subscription(gazetteer, "w@example.org", ["dover"]), now=NOW
    )
    assert active.status is ACTIVE and not send and active.areas == ("chatham",)
    store.subscribers.unsubscribe(new.id, now=NOW)
    back, send = store.subscribers.resubscribe_pending(
        make_subscription(gazetteer, "w@example.org", ["dover"]), now=NOW
    )
    # Mailed to confirm what was asked; the store keeps it unsubscribed until then.
    assert back.status is UNSUBSCRIBED and send and back.areas == ("dover",)
    assert store.subscribers.get(new.id).areas == ("chatham",)
    store.subscribers.suppress(new.id, now=NOW)
    blocked, send = store.subscribers.resubscribe_pending(subscription, now=NOW)
    assert blocked.status is SUPPRESSED and not send


def test_a_web_sign_up_in_another_case_is_the_same_opted_out_mailbox(
    store: Store, gazetteer: Gazetteer
) -> None:
    first, _ = store.subscribers.resubscribe_pending(
        make_subscription(gazetteer, "jo@example.org", ["chatham"]), now=NOW
    )
    store.subscribers.suppress(first.id, now=NOW)
    again, send = store.subscribers.resubscribe_pending(
        make_subscription(gazetteer, "Jo@example.org", ["chatham"]), now=NOW
    )
    assert (again.id, again.status, send) == (
        first.id,
        SUPPRESSED,
        False,
    )  # never mailed, no second row
    other, _ = store.subscribers.resubscribe_pending(
        make_subscription(gazetteer, "sam@example.org", ["dover"]), now=NOW
    )
    store.subscribers.unsubscribe(other.id, now=NOW)
    back, send = store.subscribers.resubscribe_pending(
        make_subscription(gazetteer, "SAM@example.org", ["dover"]), now=NOW
    )
    assert (back.id, back.status, send) == (
        other.id,
        UNSUBSCRIBED,
        True,
    )  # the owner asks again: confirm by email


# -- streaming --------------------------------------------------------------------


def test_iter_subscribers_streams_in_batches_and_filters(
    store: Store, gazetteer: Gazetteer
) -> None:
    daily = [
        subscribe(store, gazetteer, f"d{n}@example.org", "medway", frequency="daily")
        for n in range(5)
    ]
    weekly = subscribe(store, gazetteer, "w@example.org", "dover", frequency="weekly")
    pending = subscribe(store, gazetteer, "p@example.org", status=PENDING, frequency="daily")
    gone = subscribe(store, gazetteer, "g@example.org", frequency="daily")
    store.subscribers.unsubscribe(gone.id, now=NOW)

    stream = store.subscribers.iterate(frequency=Frequency.DAILY, batch=2)
    first = next(stream)
    # Later pages are read when reached, not up front: a subscriber added meanwhile shows up.
    late = subscribe(store, gazetteer, "late@example.org", frequency="daily")
    rest = list(stream)
    assert [s.id for s in [first, *rest]] == [*(s.id for s in daily), late.id]

    assert [s.id for s in store.subscribers.iterate(frequency=Frequency.WEEKLY)] == [weekly.id]
    assert [s.id for s in store.subscribers.iterate(status=PENDING)] == [pending.id]
    assert len(list(store.subscribers.iterate(status=None, batch=3))) == 9
    assert [s.id for s in store.subscribers.iterate(areas=["dover"])] == [weekly.id]
    assert store.subscribers.count() == {
        "pending": 1,
        "active": 7,
        "unsubscribed": 1,
        "suppressed": 0,
    }


def test_iter_subscribers_with_nobody_yields_nothing(store: Store) -> None:
    assert list(store.subscribers.iterate()) == []


def test_an_opt_out_covers_every_spelling_of_the_local_part(
    store: Store, gazetteer: Gazetteer
) -> None:
    gone = subscribe(store, gazetteer, "Jo.Bloggs@example.org")
    store.subscribers.unsubscribe(gone.id, now=NOW)
    with pytest.raises(OptedOut, match=r"Jo\.Bloggs@example\.org unsubscribed"):
        store.subscribers.save(
            make_subscription(gazetteer, "jo.bloggs@example.org", ["kent"]), now=NOW
        )


def test_iter_subscribers_can_keep_only_those_who_want_urgent_alerts_at_once(
    store: Store, gazetteer: Gazetteer
) -> None:
    eager = subscribe(store, gazetteer, "eager@example.org", frequency="daily")
    calm = subscribe(store, gazetteer, "calm@example.org", frequency="daily", urgent=False)
    assert [s.id for s in store.subscribers.iterate(urgent=True)] == [eager.id]
    assert [s.id for s in store.subscribers.iterate(urgent=False)] == [calm.id]
    assert len(list(store.subscribers.iterate())) == 2
