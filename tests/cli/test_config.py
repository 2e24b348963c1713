"""config.yaml is validated once at start-up: every mistake is one line naming the key
(and the line), and the CLI exits 2. --config works anywhere, and so does $ALERTS_CONFIG."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from alerts.cli import cli
from alerts.config import CONFIG_ENV, Config, Secret, load_config, parse_config
from alerts.errors import ConfigError
from tests.support import REPO, make_database


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_the_shipped_config_is_valid() -> None:
    config = load_config(REPO / "config.yaml")
    assert config.timezone == "Europe/London"
    assert config.sources[0].path == REPO / "advisories"


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "# nothing set\n")
    assert config.gazetteer == "kent"
    assert config.delivery.backend == "maildir"
    assert config.database == f"sqlite:///{tmp_path / 'var' / 'alerts.db'}"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "sources:\n  - path: advisories\nfeeds:\n  out: public/feeds\ndatabase: sqlite:///db/a.db\n",
    )
    assert config.sources[0].path == tmp_path / "advisories"
    assert config.feeds.out == tmp_path / "public" / "feeds"
    assert config.database == f"sqlite:///{tmp_path / 'db' / 'a.db'}"


def test_the_sections_stages_are_given_hold_the_paths_resolved(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "templates: ours\ntimezone: Europe/Paris\nsecurity:\n  secret_key_file: keys/secret.key\n"
        "delivery:\n  maildir: mail\nemail:\n  from: Alerts <alerts@example.org>\n",
    )
    mail = config.mail
    assert mail.templates == tmp_path / "ours"
    assert mail.template_folders("email")[0] == tmp_path / "ours" / "email"
    assert mail.security.secret_key_file == tmp_path / "keys" / "secret.key"
    assert (mail.site, mail.email, mail.tz.key) == (config.site, config.email, "Europe/Paris")
    assert config.delivery.maildir == tmp_path / "mail"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    with pytest.raises(ValueError, match="frozen"):
        config.timezone = "UTC"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "databse: sqlite:///x.db\n",
            "config.yaml:1: unknown key 'databse'; did you mean 'database'?",
        ),
        ("colour: blue\n", "config.yaml:1: unknown key 'colour'; check the spelling"),
        (
            "site:\n  base_ur: https://a.example\n",
            "config.yaml:2: unknown key 'site.base_ur'; did you mean 'base_url'?",
        ),
        (
            "sources:\n  - path: a\n    timout: 3\n",
            "unknown key 'sources[0].timout'; did you mean 'timeout'?",
        ),
        ("email:\n  form: a@example.org\n", "unknown key 'email.form'; did you mean 'from'?"),
        ("delivery:\n  smtp:\n    host: a\n    pasword_env: P\n", "did you mean 'password_env'?"),
        # Booleans are not numbers, nor numbers booleans.
        (
            "retention:\n  sent_days: true\n",
            "config.yaml:2: 'retention.sent_days': must be a number, got true",
        ),
        (
            "scheduler:\n  poll_minutes: false\n",
            "'scheduler.poll_minutes': must be a number, got false",
        ),
        ("retention:\n  unsubscribed_days: 1e6\n", "'retention.unsubscribed_days'"),
        (
            "retention:\n  pending_days: 99999999999\n",
            "'retention.pending_days': Input should be less than or equal to 3650",
        ),
        # A key given twice: the first would silently do nothing.
        (
            "timezone: UTC\nfeeds: {}\ntimezone: Europe/London\n",
            "config.yaml:3: the key 'timezone' is given twice (keep one of them)",
        ),
        ("site:\n  name: A\n  name: B\n", "config.yaml:3: the key 'name' is given twice"),
        # base_url: personal links are base_url + path, so an origin with an optional path only.
        (
            "site:\n  base_url: https://a.example/alerts?x=1\n",
            "'site.base_url': must be an origin with an optional path",
        ),
        (
            "site:\n  base_url: https://a.example/#top\n",
            "'site.base_url': must be an origin with an optional path",
        ),
        (
            "site:\n  base_url: https://user:pw@a.example\n",
            "'site.base_url': must be an origin with an optional path",
        ),
        ("site:\n  base_url: https://a.example:99999\n", "'site.base_url': has a bad port"),
        ("site:\n  base_url: ftp://a.example\n", "'site.base_url': must be an http(s) URL"),
        (
            "delivery:\n  smtp:\n    host: a\n    hots: b\n",
            "config.yaml:4: unknown key 'delivery.smtp.hots'",
        ),
        ("sources:\n  - path: a\n  - pth: b\n", "config.yaml:3: unknown key 'sources[1].pth'"),
        (
            "feeds:\n  max_items: lots\n",
            "config.yaml:2: 'feeds.max_items': Input should be a valid integer",
        ),
        (
            "scheduler:\n  poll_minutes: -1\n",
            "config.yaml:2: 'scheduler.poll_minutes': Input should be greater than 0",
        ),
        (
            "digests:\n  daily_at: '25:00'\n",
            "config.yaml:2: 'digests.daily_at': Input should be in a valid time format",
        ),
        (
            "digests:\n  weekly_day: funday\n",
            "config.yaml:2: 'digests.weekly_day': Input should be 'monday'",
        ),
        ("sources: advisories\n", "config.yaml:1: 'sources': Input should be a list"),
        (
            "database: mysql://x\n",
            "config.yaml:1: 'database': must be a sqlite:/// or postgresql:// URL",
        ),
        (
            "site:\n  base_url: localhost\n",
            "config.yaml:2: 'site.base_url': must be an http(s) URL",
        ),
        (
            "delivery:\n  backend: smtp\n  smtp:\n    port: 587\n",
            "config.yaml:3: missing required key 'delivery.smtp.host'",
        ),
        (
            "delivery:\n  backend: smtp\n",
            "config.yaml:1: 'delivery': backend is smtp but there is no 'smtp:' section",
        ),
        (
            "delivery:\n  smtp:\n    host: a\n    security: none\n    username: u\n    password_env: P\n",
            "'delivery.smtp': refusing to send credentials in clear",
        ),
        ("timezone: Mars/Olympus\n", "config.yaml:1: 'timezone': unknown time zone 'Mars/Olympus'"),
        ("timezone: 5\n", "'timezone': Input should be a valid string (got 5)"),
        (
            "sources:\n  - path: a\n    feed: https://x.example/rss\n",
            "'sources[0]': give exactly one of 'path'",
        ),
        ("root: /etc\n", "unknown key 'root'"),
        ("- a\n- b\n", "the config must be a mapping"),
        ("feeds:\n  out: [unclosed\nsite: {}\n", "config.yaml:3: invalid YAML"),
        # Numbers are bounded: a huge one would pass, then overflow in every run.
        (
            "digests:\n  max_age_days: 99999999999999999999\n",
            "config.yaml:2: 'digests.max_age_days': Input should be less than or equal to 3650 "
            "(got 99999999999999999999)",
        ),
        (
            "feeds:\n  max_items: 100000\n",
            "'feeds.max_items': Input should be less than or equal to 1000",
        ),
        (
            "digests:\n  max_items: 1000000000\n",
            "'digests.max_items': Input should be less than or equal to 1000",
        ),
        (
            "scheduler:\n  poll_minutes: .inf\n",
            "config.yaml:2: 'scheduler.poll_minutes': Input should be a finite number",
        ),
        (
            "scheduler:\n  misfire_grace_minutes: 1e12\n",
            "'scheduler.misfire_grace_minutes': Input should be less than or equal to 43200",
        ),
        (
            "sources:\n  - feed: https://x.example/rss\n    timeout: .nan\n",
            "config.yaml:3: 'sources[0].timeout': Input should be a finite number",
        ),
        (
            "sources:\n  - feed: https://x.example/rss\n    max_bytes: 1e30\n",
            "'sources[0].max_bytes'",
        ),
        (
            "delivery:\n  retry_max: 1e300\n",
            "'delivery.retry_max': Input should be less than or equal to 2592000",
        ),
        (
            "delivery:\n  max_attempts: 10000000\n",
            "'delivery.max_attempts': Input should be less than or equal to 1000",
        ),
        (
            "delivery:\n  lease_seconds: 1e20\n",
            "'delivery.lease_seconds': Input should be less than or equal to 86400",
        ),
        (
            "delivery:\n  max_bounces: 0\n",
            "'delivery.max_bounces': Input should be greater than or equal to 1",
        ),
        (
            "delivery:\n  smtp:\n    host: a\n    rate: 1e400\n",
            "config.yaml:4: 'delivery.smtp.rate': Input should be a finite number",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_the_key_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = error(tmp_path, text)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "config.yaml"))
    assert expected in message


def test_base_url_may_carry_a_path(tmp_path: Path) -> None:
    assert load(tmp_path, "site:\n  base_url: https://council.example/alerts/\n").site.base_url == (
        "https://council.example/alerts"
    )


def test_retention_of_ten_years_is_the_most_allowed(tmp_path: Path) -> None:
    assert load(tmp_path, "retention:\n  sent_days: 3650\n").retention.sent_days == 3650


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml")
    assert info.value.hint is not None
    assert "--config" in info.value.hint
    assert CONFIG_ENV in info.value.hint


def test_password_comes_from_the_named_variable_and_never_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load(
        tmp_path,
        "delivery:\n  smtp:\n    host: a\n    username: u\n    password_env: TEST_SMTP_PW\n",
    )
    assert config.delivery.smtp is not None
    with pytest.raises(ConfigError, match="TEST_SMTP_PW is not set"):
        config.delivery.smtp.password()
    monkeypatch.setenv("TEST_SMTP_PW", "hunter2")
    secret = config.delivery.smtp.password()
    assert isinstance(secret, Secret)
    assert secret.reveal() == "hunter2"
    assert "hunter2" not in f"{secret} {secret!r} {config!r}"


def test_parse_config_validates_a_mapping_without_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: unknown key 'nope'"):
        parse_config({"nope": 1}, root=tmp_path)


# -- through the CLI -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "databse: x\n",
        "delivery:\n  backend: smtp\n  smtp:\n    port: 25\n",
        "timezone: Nowhere/Land\n",
        "a: [\n",
    ],
)
def test_cli_prints_one_line_and_exits_2_on_a_bad_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), "advisories", "list"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {path}")


def test_cli_missing_config_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.yaml"), "areas"])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr


@pytest.fixture
def bad_and_good(tmp_path: Path, config_path: Path) -> tuple[Path, Path]:
    bad = tmp_path / "bad.yaml"
    bad.write_text("unknown_key: 1\n", encoding="utf-8")
    make_database(config_path)
    return bad, config_path


@pytest.mark.parametrize(
    "args",
    [
        lambda c: ["--config", c, "advisories", "list"],
        lambda c: ["advisories", "list", "--config", c],
        lambda c: ["--config", c, "areas"],
        lambda c: ["areas", "--config", c],
        lambda c: ["ingest", "--config", c],
    ],
    ids=["before-group", "after-subcommand", "before-command", "after-command", "ingest"],
)
def test_config_option_works_before_and_after_the_subcommand(
    bad_and_good: tuple[Path, Path], args: Callable[[str], list[str]]
) -> None:
    bad, good = bad_and_good
    assert CliRunner().invoke(cli, args(str(good))).exit_code == 0
    failed = CliRunner().invoke(cli, args(str(bad)))
    assert failed.exit_code == 2
    assert "unknown key 'unknown_key'" in failed.stderr


def test_subcommand_config_wins_over_the_group_option(bad_and_good: tuple[Path, Path]) -> None:
    bad, good = bad_and_good
    result = CliRunner().invoke(cli, ["--config", str(bad), "areas", "--config", str(good)])
    assert result.exit_code == 0


def test_alerts_config_variable_is_used_without_the_option(
    bad_and_good: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, good = bad_and_good
    elsewhere = tmp_path / "cwd"  # no ./config.yaml here to fall back on
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert CliRunner().invoke(cli, ["areas"], env={CONFIG_ENV: str(good)}).exit_code == 0
    failed = CliRunner().invoke(cli, ["areas"], env={CONFIG_ENV: str(bad)})
    assert failed.exit_code == 2
    assert str(bad) in failed.stderr


def test_default_is_config_yaml_in_the_working_directory(
    bad_and_good: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, good = bad_and_good
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(good.parent)
    assert CliRunner().invoke(cli, ["areas", "--json"]).exit_code == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = CliRunner().invoke(cli, ["areas"])
    assert result.exit_code == 2
    assert "config.yaml: config file not found" in result.stderr


def test_a_source_is_named_by_what_cannot_hold_a_secret_unless_named(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "sources:\n  - path: advisories\n  - feed: https://u:pw@feeds.example.org:8443/rss?key=s3cret\n"
        "  - feed: https://other.example.org/rss\n    name: other-force\n",
    )
    assert [source.label for source in config.sources] == [
        "advisories",
        "feeds.example.org:8443",
        "other-force",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sources:\n  - feed: https://x.example/a.rss\n  - feed: https://x.example/b.rss\n",
            "'sources': two feeds are on x.example: give each a 'name:' of its own",
        ),
        (
            "sources:\n  - path: a/advisories\n  - path: b/advisories\n",
            "'sources': two sources are named 'advisories': give each a 'name:' of its own",
        ),
        (
            "sources:\n  - path: a\n    name: 'has space'\n",
            "'sources[0].name': String should match pattern",
        ),
    ],
)
def test_source_names_are_unique_and_plain(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error(tmp_path, text)


def test_two_feeds_on_one_host_with_names_are_fine(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "sources:\n  - feed: https://x.example/a.rss\n    name: a\n  - feed: https://x.example/b.rss\n    name: b\n",
    )
    assert [source.label for source in config.sources] == ["a", "b"]
