"""Links bound to their person: a token carries the row's own random key, and fits only
the row holding it; tokens of the old form (the id alone) fit only a row that existed
when they were made."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from alerts.errors import BadToken
from alerts.tokens import (
    CONFIRM,
    MANAGE,
    UNSUBSCRIBE,
    Confirmation,
    LinkSigner,
    link_fits,
    new_link_key,
)
from alerts.types import Frequency
from tests.support import NOW
from tests.support.sections import security

KEY_ENV = "ALERTS_TEST_TOKEN_KEY"


@pytest.fixture
def signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LinkSigner:
    monkeypatch.delenv(KEY_ENV, raising=False)
    return LinkSigner("https://alerts.example.org", security(tmp_path, secret_key_env=KEY_ENV))


def test_a_keyed_token_fits_only_the_row_holding_its_key(signer: LinkSigner) -> None:
    mine, theirs = new_link_key(), new_link_key()
    for purpose in (UNSUBSCRIBE, MANAGE, CONFIRM):
        claim = signer.read(signer.token(7, purpose, NOW, mine), purpose, NOW)
        assert (claim.subscriber_id, claim.key) == (7, mine)
        assert link_fits(claim, mine, NOW - timedelta(days=1))
        assert not link_fits(claim, theirs, NOW - timedelta(days=1))
        assert not link_fits(claim, None, NOW - timedelta(days=1))


def test_an_old_form_token_fits_a_row_that_existed_when_it_was_made(signer: LinkSigner) -> None:
    claim = signer.read(signer.token(7, UNSUBSCRIBE, NOW), UNSUBSCRIBE, NOW + timedelta(days=900))
    assert claim.key is None
    assert link_fits(
        claim, new_link_key(), NOW - timedelta(days=30)
    )  # an unsubscribe link never expires
    assert link_fits(claim, new_link_key(), NOW)
    # The id was reused by a row made after the link: not the person it was made for.
    assert not link_fits(claim, new_link_key(), NOW + timedelta(seconds=1))


def test_a_confirmation_carries_the_key_with_the_choices_it_states(signer: LinkSigner) -> None:
    key = new_link_key()
    stated = Confirmation(7, ("medway",), Frequency.WEEKLY, False, key=key)
    token = signer.confirm_token(stated, NOW)
    confirmation = signer.verify_confirmation(token, NOW)
    assert (confirmation.subscriber_id, confirmation.areas, confirmation.key) == (
        7,
        ("medway",),
        key,
    )
    assert link_fits(confirmation, key, NOW) and not link_fits(confirmation, new_link_key(), NOW)
    # A confirmation made before keys and choices travelled in links still reads.
    old = signer.verify_confirmation(signer.token(7, CONFIRM, NOW), NOW)
    assert old.key is None and old.areas is None


def test_a_key_cannot_change_the_shape_of_a_token(signer: LinkSigner) -> None:
    with pytest.raises(ValueError):
        signer.token(7, UNSUBSCRIBE, NOW, 'x",8,"y')


def test_a_keyed_token_tampered_with_is_refused(signer: LinkSigner) -> None:
    token = signer.token(7, UNSUBSCRIBE, NOW, new_link_key())
    with pytest.raises(BadToken):
        signer.read(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), UNSUBSCRIBE, NOW)
