"""Subscriber records, on SQLite and PostgreSQL: validation, the status changes PECR
cares about, bounces, and streaming for the digest stage."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from alerts.areas import Gazetteer
from alerts.errors import NotFound, UnknownArea
from alerts.store import Store
from alerts.store.subscribers import (
    ACTIVE,
    PENDING,
    SUPPRESSED,
    UNSUBSCRIBED,
    add_subscriber,
    confirm_subscriber,
    count_subscribers,
    find_subscriber,
    get_subscriber,
    iter_subscribers,
    record_bounce,
    resubscribe_pending,
    save_subscriber,
    suppress,
    unsubscribe,
    update_subscriber,
)
from alerts.subscribers import (
    InvalidSubscriber,
    OptedOut,
    Preferences,
    make_subscription,
    normalise_email,
)
from alerts.types import Frequency, Subscriber
from tests.conftest import NOW


def subscribe(store: Store, gazetteer: Gazetteer, email: str, *areas: str, **kwargs: Any) -> Subscriber:
    status = kwargs.pop("status", ACTIVE)
    now = kwargs.pop("now", NOW)
    return add_subscriber(
        store, make_subscription(gazetteer, email, areas or ("medway",), **kwargs), now=now, status=status
    )


# -- validation -------------------------------------------------------------------


def test_an_address_keeps_its_local_part_and_lowercases_its_domain() -> None:
    assert normalise_email("  Jo.Bloggs@Example.ORG ") == "Jo.Bloggs@example.org"


@pytest.mark.parametrize("bad", ["", "no-at-sign", "two@@example.org", "a@b", "x@example.org\r\nBcc: y@example.org"])
def test_an_invalid_address_is_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(InvalidSubscriber) as caught:
        normalise_email(bad)
    assert "\n" not in str(caught.value)


def test_addresses_are_checked_without_dns() -> None:
    # A domain that does not exist is still a well-formed address: no lookups are made.
    assert normalise_email("someone@no-such-host.invalid-tld-for-tests.org").endswith(".org")


def test_areas_accept_slugs_names_and_postcode_districts_without_repeats(gazetteer: Gazetteer) -> None:
    subscription = make_subscription(gazetteer, "a@example.org", ["ME4", "Medway", "chatham", "CT1 1AA"])
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
    assert make_subscription(gazetteer, "a@example.org", ["kent"], frequency=" Weekly ").frequency is Frequency.WEEKLY


def test_a_display_name_cannot_carry_a_header(gazetteer: Gazetteer) -> None:
    subscription = make_subscription(gazetteer, "a@example.org", ["kent"], name="Jo\r\nBcc: evil@example.org\x00")
    assert subscription.name == "Jo Bcc: evil@example.org"
    assert make_subscription(gazetteer, "a@example.org", ["kent"], name="  ").name is None


# -- records ----------------------------------------------------------------------


def test_an_active_subscriber_starts_their_watermark_when_added(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "Jo@Example.org", "ME4", "chatham", frequency="weekly", name="Jo")
    assert subscriber.status is ACTIVE
    assert subscriber.watermark == NOW and subscriber.confirmed_at == NOW
    assert subscriber.email == "Jo@example.org"
    assert subscriber.areas == ("chatham",)  # ME4 stands for Chatham
    assert subscriber.frequency is Frequency.WEEKLY and subscriber.urgent and not subscriber.forwardable
    assert get_subscriber(store, subscriber.id) == subscriber


def test_the_domain_is_compared_without_case(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "Jo@example.org")
    assert find_subscriber(store, "Jo@EXAMPLE.ORG") == subscriber
    assert find_subscriber(store, "jo@example.org") is None  # the local part is the owner's business
    with pytest.raises(InvalidSubscriber, match="already subscribed"):
        subscribe(store, gazetteer, "Jo@Example.Org")


def test_a_missing_subscriber_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        get_subscriber(store, 999)
    assert find_subscriber(store, "nobody@example.org") is None
    assert find_subscriber(store, "not an address") is None


def test_a_pending_subscriber_has_no_watermark_until_confirmed(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "p@example.org", status=PENDING)
    assert subscriber.status is PENDING and subscriber.watermark is None
    later = NOW + timedelta(days=3)
    assert confirm_subscriber(store, subscriber.id, now=later)
    confirmed = get_subscriber(store, subscriber.id)
    assert confirmed.status is ACTIVE
    assert confirmed.watermark == later and confirmed.confirmed_at == later
    # Confirming again moves nothing: the watermark is theirs now.
    assert not confirm_subscriber(store, subscriber.id, now=later + timedelta(days=1))
    assert get_subscriber(store, subscriber.id).watermark == later


def test_unsubscribing_keeps_the_row_and_a_confirm_link_cannot_undo_it(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "u@example.org", status=PENDING)
    assert unsubscribe(store, subscriber.id, now=NOW)
    assert not unsubscribe(store, subscriber.id, now=NOW)
    assert get_subscriber(store, subscriber.id).status is UNSUBSCRIBED
    assert not confirm_subscriber(store, subscriber.id, now=NOW)
    assert get_subscriber(store, subscriber.id).status is UNSUBSCRIBED


def test_an_opted_out_address_is_never_added_back(store: Store, gazetteer: Gazetteer) -> None:
    gone = subscribe(store, gazetteer, "gone@example.org")
    unsubscribe(store, gone.id, now=NOW)
    bounced = subscribe(store, gazetteer, "bounced@example.org")
    suppress(store, bounced.id, now=NOW)
    for address in ("gone@example.org", "bounced@EXAMPLE.org"):
        subscription = make_subscription(gazetteer, address, ["kent"])
        with pytest.raises(OptedOut, match="not added again"):
            save_subscriber(store, subscription, now=NOW)
        with pytest.raises(OptedOut):
            add_subscriber(store, subscription, now=NOW)
    assert get_subscriber(store, gone.id).status is UNSUBSCRIBED
    assert get_subscriber(store, bounced.id).status is SUPPRESSED


def test_save_updates_preferences_but_never_the_status(store: Store, gazetteer: Gazetteer) -> None:
    pending = subscribe(store, gazetteer, "p@example.org", status=PENDING, name="Pat")
    changed, outcome = save_subscriber(
        store, make_subscription(gazetteer, "p@example.org", ["dover"], frequency="immediate"), now=NOW
    )
    assert outcome == "updated"
    assert changed.status is PENDING and changed.areas == ("dover",) and changed.name == "Pat"
    _same, outcome = save_subscriber(
        store, make_subscription(gazetteer, "p@example.org", ["dover"], frequency="immediate"), now=NOW
    )
    assert outcome == "unchanged"
    assert pending.id == changed.id


def test_preferences_change_only_what_is_given(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "m@example.org", "medway", frequency="daily", name="M")
    updated = update_subscriber(store, subscriber.id, Preferences(areas=("dover", "kent"), urgent=False))
    assert updated.areas == ("dover", "kent") and not updated.urgent
    assert updated.frequency is Frequency.DAILY and updated.name == "M" and updated.status is ACTIVE
    with pytest.raises(NotFound):
        update_subscriber(store, 999, Preferences(urgent=False))


def test_hard_bounces_suppress_the_address_at_the_limit(store: Store, gazetteer: Gazetteer) -> None:
    subscriber = subscribe(store, gazetteer, "b@example.org")
    assert record_bounce(store, subscriber.id, 3, now=NOW) is False
    assert record_bounce(store, subscriber.id, 3, now=NOW) is False
    assert record_bounce(store, subscriber.id, 3, now=NOW) is True  # this one suppressed it
    assert record_bounce(store, subscriber.id, 3, now=NOW) is False  # already suppressed: not news
    after = get_subscriber(store, subscriber.id)
    assert after.status is SUPPRESSED and after.bounces == 4
    assert not unsubscribe(store, subscriber.id, now=NOW)  # suppressed stays suppressed
    with pytest.raises(NotFound):
        record_bounce(store, 999, 3, now=NOW)


def test_a_web_sign_up_is_pending_and_only_its_owner_can_come_back(store: Store, gazetteer: Gazetteer) -> None:
    subscription = make_subscription(gazetteer, "w@example.org", ["chatham"])
    new, send = resubscribe_pending(store, subscription, now=NOW)
    assert new.status is PENDING and send
    confirm_subscriber(store, new.id, now=NOW)
    active, send = resubscribe_pending(store, make_subscription(gazetteer, "w@example.org", ["dover"]), now=NOW)
    assert active.status is ACTIVE and not send and active.areas == ("chatham",)
    unsubscribe(store, new.id, now=NOW)
    back, send = resubscribe_pending(store, make_subscription(gazetteer, "w@example.org", ["dover"]), now=NOW)
    # Mailed to confirm what was asked; the store keeps it unsubscribed until then.
    assert back.status is UNSUBSCRIBED and send and back.areas == ("dover",)
    assert get_subscriber(store, new.id).areas == ("chatham",)
    suppress(store, new.id, now=NOW)
    blocked, send = resubscribe_pending(store, subscription, now=NOW)
    assert blocked.status is SUPPRESSED and not send


def test_a_web_sign_up_in_another_case_is_the_same_opted_out_mailbox(store: Store, gazetteer: Gazetteer) -> None:
    first, _ = resubscribe_pending(store, make_subscription(gazetteer, "jo@example.org", ["chatham"]), now=NOW)
    suppress(store, first.id, now=NOW)
    again, send = resubscribe_pending(store, make_subscription(gazetteer, "Jo@example.org", ["chatham"]), now=NOW)
    assert (again.id, again.status, send) == (first.id, SUPPRESSED, False)  # never mailed, no second row
    other, _ = resubscribe_pending(store, make_subscription(gazetteer, "sam@example.org", ["dover"]), now=NOW)
    unsubscribe(store, other.id, now=NOW)
    back, send = resubscribe_pending(store, make_subscription(gazetteer, "SAM@example.org", ["dover"]), now=NOW)
    assert (back.id, back.status, send) == (other.id, UNSUBSCRIBED, True)  # the owner asks again: confirm by email


# -- streaming --------------------------------------------------------------------


def test_iter_subscribers_streams_in_batches_and_filters(store: Store, gazetteer: Gazetteer) -> None:
    daily = [subscribe(store, gazetteer, f"d{n}@example.org", "medway", frequency="daily") for n in range(5)]
    weekly = subscribe(store, gazetteer, "w@example.org", "dover", frequency="weekly")
    pending = subscribe(store, gazetteer, "p@example.org", status=PENDING, frequency="daily")
    gone = subscribe(store, gazetteer, "g@example.org", frequency="daily")
    unsubscribe(store, gone.id, now=NOW)

    stream = iter_subscribers(store, frequency=Frequency.DAILY, batch=2)
    first = next(stream)
    # Later pages are read when reached, not up front: a subscriber added meanwhile shows up.
    late = subscribe(store, gazetteer, "late@example.org", frequency="daily")
    rest = list(stream)
    assert [s.id for s in [first, *rest]] == [*(s.id for s in daily), late.id]

    assert [s.id for s in iter_subscribers(store, frequency=Frequency.WEEKLY)] == [weekly.id]
    assert [s.id for s in iter_subscribers(store, status=PENDING)] == [pending.id]
    assert len(list(iter_subscribers(store, status=None, batch=3))) == 9
    assert [s.id for s in iter_subscribers(store, areas=["dover"])] == [weekly.id]
    assert count_subscribers(store) == {"pending": 1, "active": 7, "unsubscribed": 1, "suppressed": 0}


def test_iter_subscribers_with_nobody_yields_nothing(store: Store) -> None:
    assert list(iter_subscribers(store)) == []


def test_an_opt_out_covers_every_spelling_of_the_local_part(store: Store, gazetteer: Gazetteer) -> None:
    gone = subscribe(store, gazetteer, "Jo.Bloggs@example.org")
    unsubscribe(store, gone.id, now=NOW)
    with pytest.raises(OptedOut, match=r"Jo\.Bloggs@example\.org unsubscribed"):
        save_subscriber(store, make_subscription(gazetteer, "jo.bloggs@example.org", ["kent"]), now=NOW)


def test_iter_subscribers_can_keep_only_those_who_want_urgent_alerts_at_once(store: Store, gazetteer: Gazetteer) -> None:
    eager = subscribe(store, gazetteer, "eager@example.org", frequency="daily")
    calm = subscribe(store, gazetteer, "calm@example.org", frequency="daily", urgent=False)
    assert [s.id for s in iter_subscribers(store, urgent=True)] == [eager.id]
    assert [s.id for s in iter_subscribers(store, urgent=False)] == [calm.id]
    assert len(list(iter_subscribers(store))) == 2
