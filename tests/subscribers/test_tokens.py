"""Signed link tokens: unforgeable, one purpose each, expiring when asked, and a key
that comes from the environment or a private file made on first use."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, urlsplit

import pytest
import time_machine

from alerts.config import SecurityConfig
from alerts.errors import BadToken, ConfigError
from alerts.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, LinkSigner, PersonalLinks, load_secret_key
from tests.support import NOW

KEY_ENV = "ALERTS_TEST_TOKEN_KEY"


BASE_URL = "https://alerts.example.org"


def make_security(tmp_path: Path) -> SecurityConfig:
    return SecurityConfig(secret_key_env=KEY_ENV, secret_key_file=tmp_path / "var" / "secret.key")


def make_signer(tmp_path: Path) -> LinkSigner:
    return LinkSigner(BASE_URL, make_security(tmp_path))


@pytest.fixture
def security(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SecurityConfig:
    monkeypatch.delenv(KEY_ENV, raising=False)
    return make_security(tmp_path)


@pytest.fixture
def signer(security: SecurityConfig) -> LinkSigner:
    return LinkSigner(BASE_URL, security)


def test_a_token_verifies_to_the_subscriber_it_was_made_for(signer: LinkSigner) -> None:
    for purpose in (UNSUBSCRIBE, MANAGE, CONFIRM):
        assert signer.verify(signer.token(42, purpose, NOW), purpose, NOW) == 42


def test_a_token_for_one_purpose_does_not_work_for_another(signer: LinkSigner) -> None:
    token = signer.token(42, MANAGE, NOW)
    with pytest.raises(BadToken, match="not valid"):
        signer.verify(token, UNSUBSCRIBE, NOW)
    with pytest.raises(BadToken):
        signer.verify(signer.token(42, UNSUBSCRIBE, NOW), CONFIRM, NOW)


def test_a_tampered_token_is_rejected(signer: LinkSigner) -> None:
    token = signer.token(42, UNSUBSCRIBE, NOW)
    _payload, rest = token.split(".", 1)
    other_payload = signer.token(43, UNSUBSCRIBE, NOW).split(".", 1)[0]
    for bad in (
        other_payload + "." + rest,  # someone else's id with this signature
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "",
        "not-a-token",
        token + "x",
    ):
        with pytest.raises(BadToken) as caught:
            signer.verify(bad, UNSUBSCRIBE, NOW)
        assert not caught.value.expired


def test_a_token_signed_with_another_key_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "one-key-that-is-long-enough")
    token = make_signer(tmp_path).token(7, UNSUBSCRIBE, NOW)
    monkeypatch.setenv(KEY_ENV, "another-key-that-is-long-enough")
    with pytest.raises(BadToken):
        make_signer(tmp_path).verify(token, UNSUBSCRIBE, NOW)


def test_a_token_expires_after_max_age_only_when_asked(signer: LinkSigner) -> None:
    token = signer.token(5, CONFIRM, NOW)
    assert signer.verify(token, CONFIRM, NOW + timedelta(days=2), max_age=3 * 86400) == 5
    with pytest.raises(BadToken, match="expired") as caught:
        signer.verify(token, CONFIRM, NOW + timedelta(days=4), max_age=3 * 86400)
    assert caught.value.expired
    # Unsubscribe links in old mail must keep working: no max_age, no expiry.
    assert signer.verify(token, CONFIRM, NOW + timedelta(days=4000)) == 5


def test_a_token_stamped_ahead_of_now_by_another_clock_is_still_good(signer: LinkSigner) -> None:
    token = signer.token(
        5, MANAGE, NOW + timedelta(minutes=3)
    )  # a web process whose clock runs ahead
    assert signer.verify(token, MANAGE, NOW, max_age=60) == 5


def test_the_age_of_a_token_is_read_from_the_time_given_never_the_system_clock(
    signer: LinkSigner,
) -> None:
    # Made and checked in 2031: the machine's date (any) plays no part.
    then = datetime(2031, 6, 1, tzinfo=UTC)
    token = signer.token(6, MANAGE, then)
    assert signer.verify(token, MANAGE, then + timedelta(days=29), max_age=30 * 86400) == 6
    with pytest.raises(BadToken, match="expired"):
        signer.verify(token, MANAGE, then + timedelta(days=31), max_age=30 * 86400)


def test_tokens_do_not_name_the_email_and_do_not_look_like_a_counter(signer: LinkSigner) -> None:
    tokens = [signer.token(n, UNSUBSCRIBE, NOW) for n in (1, 2, 3)]
    assert len(set(tokens)) == 3
    assert all(len(token) > 40 for token in tokens)
    assert all("@" not in token for token in tokens)


def test_an_unknown_purpose_is_a_programming_error(signer: LinkSigner) -> None:
    with pytest.raises(ValueError, match="unknown token purpose"):
        signer.token(1, "delete-everything", NOW)


def test_links_point_at_the_site_pages_with_tokens_for_their_purpose(signer: LinkSigner) -> None:
    links = signer.links(9, NOW)
    assert isinstance(links, PersonalLinks)
    unsubscribe, manage, one_click = (
        urlsplit(u) for u in (links.unsubscribe_url, links.manage_url, links.one_click_url)
    )
    assert links.unsubscribe_url.startswith("https://alerts.example.org/unsubscribe?token=")
    assert links.manage_url.startswith("https://alerts.example.org/manage?token=")
    assert links.one_click_url.startswith("https://alerts.example.org/unsubscribe/one-click?token=")

    def token(parts: SplitResult) -> str:
        return parse_qs(parts.query)["token"][0]

    assert signer.verify(token(unsubscribe), UNSUBSCRIBE, NOW) == 9
    assert signer.verify(token(one_click), UNSUBSCRIBE, NOW) == 9
    assert signer.verify(token(manage), MANAGE, NOW) == 9
    with pytest.raises(BadToken):
        signer.verify(token(manage), UNSUBSCRIBE, NOW)
    with pytest.raises(AttributeError):
        links.manage_url = "x"  # type: ignore[misc]


def test_without_the_variable_a_private_key_file_is_made_once_and_reused(
    security: SecurityConfig, caplog: pytest.LogCaptureFixture
) -> None:
    path = security.secret_key_file
    assert not path.exists()
    with caplog.at_level(logging.WARNING, logger="alerts.tokens"):
        token = LinkSigner(BASE_URL, security).token(3, MANAGE, NOW)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="alerts.tokens"):
        assert LinkSigner(BASE_URL, security).verify(token, MANAGE, NOW) == 3
    assert caplog.text == ""
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_the_environment_variable_wins_over_the_file(
    security: SecurityConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "  a-key-from-the-environment  ")
    assert load_secret_key(security) == b"a-key-from-the-environment"
    assert not security.secret_key_file.exists()


def test_a_short_key_is_a_config_error_naming_the_setting(
    security: SecurityConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(
        ConfigError, match=r"security\.secret_key_env: a signing key .* shorter than 16"
    ):
        LinkSigner(BASE_URL, security)
    monkeypatch.delenv(KEY_ENV)
    security.secret_key_file.parent.mkdir(parents=True)
    security.secret_key_file.write_text("tiny\n")
    with pytest.raises(ConfigError, match=r"secret\.key: the signing key file holds fewer"):
        LinkSigner(BASE_URL, security)


def test_a_new_key_can_replace_the_old_without_breaking_links_already_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "the-old-key-that-is-long-enough", "the-new-key-that-is-long-enough"
    monkeypatch.setenv(KEY_ENV, old)
    sent = make_signer(tmp_path).token(8, UNSUBSCRIBE, NOW)
    monkeypatch.setenv(KEY_ENV, f"{new} {old}")
    rotated = make_signer(tmp_path)
    assert rotated.verify(sent, UNSUBSCRIBE, NOW) == 8  # old mail still works
    fresh = rotated.token(8, UNSUBSCRIBE, NOW)
    monkeypatch.setenv(KEY_ENV, new)
    assert make_signer(tmp_path).verify(fresh, UNSUBSCRIBE, NOW) == 8  # signed with the new key
    with pytest.raises(BadToken):
        make_signer(tmp_path).verify(sent, UNSUBSCRIBE, NOW)  # the old key is gone
    monkeypatch.setenv(KEY_ENV, f"{new} short")
    with pytest.raises(ConfigError):
        make_signer(tmp_path)


def test_a_token_is_exactly_what_itsdangerous_makes_for_the_same_key_salt_and_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "the-new-key-that-is-long-enough the-old-key-that-is-long-enough")
    signer = make_signer(tmp_path)
    with time_machine.travel(NOW, tick=False):
        for purpose in (UNSUBSCRIBE, MANAGE, CONFIRM):
            for subscriber_id in (1, 42, 987_654_321):
                assert signer.token(subscriber_id, purpose, NOW) == signer._serializer(
                    purpose
                ).dumps(subscriber_id)
            # An id itsdangerous would compress is signed uncompressed, and still verifies.
            assert signer.verify(signer.token(10**12, purpose, NOW), purpose, NOW) == 10**12
