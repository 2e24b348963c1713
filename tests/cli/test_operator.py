"""The CLI as an operator meets it: what ``alerts status`` says about the last run, what
``alerts send`` says when the relay is down, and settings that fail at start-up with one
line naming the key (not in a job hours later, not as a traceback)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from alerts.app import App
from alerts.cli import cli
from alerts.digest import queue_digests
from alerts.logs import TextFormatter
from alerts.store.runs import KEEP_POLLS
from alerts.testing import SmtpSink
from alerts.types import Frequency
from tests.support import NOW, make_database
from tests.support.digests import advisory, save, subscribe

Run = Callable[..., Result]
WriteConfig = Callable[..., Path]


def closed_port() -> int:
    with SmtpSink() as sink:
        return sink.port  # nothing listens on it once the sink has stopped


def queue_alerts(config: Path, count: int = 1) -> None:
    app = App(config)
    save(app, advisory("courier-fraud", areas=("medway",)))
    for i in range(count):
        subscribe(app, f"reader{i}@example.org", ["chatham"], frequency=Frequency.IMMEDIATE)
    assert (
        queue_digests(
            app.config.mail,
            app.config.digests,
            app.store,
            app.gazetteer,
            Frequency.IMMEDIATE,
            now=NOW,
        ).messages
        == count
    )
    app.close()


def relay_down(write_config: WriteConfig) -> Path:
    smtp = {"host": "127.0.0.1", "port": closed_port(), "security": "none", "timeout": 2}
    return write_config(
        delivery={"backend": "smtp", "smtp": smtp},
        email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
    )


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


# -- alerts status ---------------------------------------------------------------------------


def test_status_tells_the_last_run_in_words_and_json_keeps_every_count(run_cli: Run) -> None:
    assert run_cli("run", "--once").exit_code == 0

    text = run_cli("status").stdout
    info = json.loads(run_cli("status", "--json").stdout)

    lines = text.splitlines()
    assert lines[0] == "Scheduler: 'alerts serve' has never run against this database"
    assert "Delivered so far: 0 sent, 0 deferred, 0 bounced, 0 failed" in lines
    assert any(
        re.fullmatch(r"Source .*advisories \(folder\): ok, last read .*", line) for line in lines
    )
    run = next(i for i, line in enumerate(lines) if line.startswith("Last run:"))
    assert re.fullmatch(
        r"Last run: alerts run at \d\d/\d\d/\d{4} \d\d:\d\d \w+ \(\d+\.\d s\): ok", lines[run]
    )
    assert lines[run + 1] == "  Advisories: 1 new, 0 updated, 0 rejected"
    assert re.fullmatch(r"  Feeds: \d+ rewritten, 0 unchanged", lines[run + 2])
    assert (
        lines[run + 3]
        == "  Mail: 0 queued (ran the daily and weekly digests); 0 sent, 0 deferred, 0 bounced, 0 failed"
    )
    assert "new: " not in text and "seconds" not in text  # no dict dump
    summary = info["last_run"]["summary"]
    assert info["last_run"]["kind"] == "run"  # not the 'feeds' marker row written during it
    assert {
        "new",
        "feeds_written",
        "feeds_unchanged",
        "queued",
        "sent",
        "seconds",
        "problems",
    } <= set(summary)


def test_status_before_any_run_says_so(config_path: Path, run_cli: Run) -> None:
    make_database(config_path)
    assert run_cli("status").stdout.splitlines()[-1] == "Last run: none yet"


# -- alerts send with the relay down ---------------------------------------------------------


def test_send_with_the_relay_down_keeps_the_messages_and_says_what_to_do_in_one_line(
    write_config: WriteConfig, run_cli: Run
) -> None:
    config = relay_down(write_config)
    queue_alerts(config, count=3)

    result = run_cli("send", config=config)  # four workers meet the same closed port

    assert result.exit_code == 1
    [error] = error_lines(result)
    assert re.fullmatch(
        r"Error: relay unavailable: 127\.0\.0\.1:\d+: cannot connect: .*Connection refused "
        r"\(the messages stay queued and are retried; check that the relay is up and "
        r"delivery\.smtp\.host and port\)",
        error,
    )
    assert "Traceback" not in result.output
    status = run_cli("status", config=config)
    assert json.loads(run_cli("status", "--json", config=config).stdout)["outbox"]["pending"] == 3
    assert "Last run: alerts send at" in status.stdout and ": with failures" in status.stdout
    assert "  ! relay unavailable: 127.0.0.1:" in status.stdout


def test_send_with_nothing_due_says_when_the_next_retry_is(
    write_config: WriteConfig, run_cli: Run
) -> None:
    config = relay_down(write_config)
    queue_alerts(config)
    assert run_cli("send", config=config).exit_code == 1  # deferred for a minute

    again = run_cli("send", config=config)

    assert again.exit_code == 0
    assert again.stdout.splitlines()[0] == "Sent 0, deferred 0, bounced 0, failed 0, suppressed 0."
    assert re.fullmatch(
        r"Nothing due: 1 waiting to be retried, the next at \d\d/\d\d/\d{4} \d\d:\d\d \w+\.",
        again.stdout.splitlines()[1],
    )


# -- start-up checks -------------------------------------------------------------------------

COMMANDS = [("run", "--once"), ("serve",), ("send",), ("digest", "--frequency", "daily"), ("web",)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_templates_folder_that_does_not_exist_fails_at_start_up_naming_the_key(
    write_config: WriteConfig, run_cli: Run, tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = write_config(templates=str(tmp_path / "nowhere"))

    result = run_cli(*command, config=config)

    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: templates: the templates folder {tmp_path / 'nowhere'} does not exist (create it (its "
        "email/ and web/ templates replace the packaged ones) or remove 'templates:' from config.yaml)\n"
    )
    assert not (tmp_path / "alerts.db").exists()  # nothing ran


@pytest.mark.parametrize("command", [("areas",), ("serve",), ("run",)], ids=lambda c: c[0])
def test_a_gazetteer_file_that_does_not_exist_names_the_key(
    write_config: WriteConfig, run_cli: Run, tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = write_config(gazetteer=str(tmp_path / "essex.yaml"))

    result = run_cli(*command, config=config)

    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: gazetteer: cannot read the gazetteer {tmp_path / 'essex.yaml'}: No such file or directory "
        "(set 'gazetteer:' in config.yaml to a built-in name such as kent, or the path of a gazetteer .yaml file)\n"
    )


@pytest.mark.parametrize("command", [("serve",), ("run",), ("send",)], ids=lambda c: c[0])
def test_a_bad_dkim_key_fails_at_start_up(
    write_config: WriteConfig, run_cli: Run, tmp_path: Path, command: tuple[str, ...]
) -> None:
    key = tmp_path / "dkim.pem"
    key.write_text("not a key\n", encoding="utf-8")
    config = write_config(
        delivery={"dkim": {"domain": "example.org", "selector": "s1", "key_file": str(key)}}
    )

    result = run_cli(*command, config=config)

    assert result.exit_code == 2
    [error] = error_lines(result)
    assert error.startswith(
        f"Error: delivery.dkim.key_file: {key} is not an RSA private key in PEM form (unencrypted): "
    )
    assert error.endswith(
        "(give the PEM file that starts with -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)"
    )
    assert not (tmp_path / "alerts.db").exists()


def test_serve_without_the_smtp_password_fails_at_start_up(
    write_config: WriteConfig, run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERTS_TEST_NO_SUCH_PASSWORD", raising=False)
    smtp = {
        "host": "127.0.0.1",
        "username": "alerts",
        "password_env": "ALERTS_TEST_NO_SUCH_PASSWORD",
    }
    config = write_config(delivery={"backend": "smtp", "smtp": smtp})

    result = run_cli("serve", config=config)

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: delivery.smtp.password_env: environment variable ALERTS_TEST_NO_SUCH_PASSWORD is not set "
        "(export ALERTS_TEST_NO_SUCH_PASSWORD=... before running)\n"
    )


def test_an_unreachable_postgresql_server_is_one_line_with_the_password_hidden(
    write_config: WriteConfig, run_cli: Run
) -> None:
    pytest.importorskip("psycopg")
    port = closed_port()
    config = write_config(database=f"postgresql://alerts:sekrit@127.0.0.1:{port}/alerts")

    result = run_cli("status", config=config)

    assert result.exit_code == 1
    [error] = result.stderr.splitlines()
    assert error.startswith(
        f"Error: database: cannot open postgresql://alerts:***@127.0.0.1:{port}/alerts: "
    )
    assert "Connection refused" in error and "sekrit" not in error
    assert error.endswith(
        "(check the 'database:' URL in config.yaml and that the server is running)"
    )


# -- what else an operator reads -------------------------------------------------------------


def test_text_log_lines_carry_the_utc_offset() -> None:
    record = logging.LogRecord(
        "alerts.pipeline", logging.INFO, __file__, 1, "poll: 0 new", None, None
    )

    line = TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s").format(record)

    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d INFO alerts.pipeline: poll: 0 new", line
    )


def test_advisories_show_prints_a_summary_taken_from_the_first_paragraph_once(run_cli: Run) -> None:
    assert run_cli("ingest").exit_code == 0

    text = run_cli("advisories", "show", "1").stdout

    assert text.count("Fraud investigators are reminding residents") == 1


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("advisories", "list", "--since", "yesterday"),
            "Error: Invalid value for --since: unreadable date 'yesterday'; write it as 'HH:MM DD/MM/YYYY' "
            "such as 14:30 18/12/2020, or ISO 8601 (see 'alerts advisories list --help')",
        ),
        (
            ("subscribers", "add", "a@example.org"),
            "Error: Missing option '--area' (see 'alerts subscribers add --help')",
        ),
        (
            ("--log-format", "xml", "status"),
            "Error: Invalid value for '--log-format': 'xml' is not one of 'text', 'json' (see 'alerts --help')",
        ),
        (
            ("statsu",),
            "Error: No such command 'statsu'. Did you mean 'status'? (see 'alerts --help')",
        ),
    ],
)
def test_a_usage_error_is_one_line_pointing_at_the_help(
    config_path: Path, args: tuple[str, ...], line: str
) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args], prog_name="alerts")

    assert result.exit_code == 2
    assert result.stderr == line + "\n"


def test_the_command_list_is_not_cut_short_and_the_help_ends_with_examples() -> None:
    text = CliRunner().invoke(cli, ["--help"]).stdout

    commands = text[text.index("Commands:") : text.index("Examples:")]
    assert "..." not in commands
    assert "Examples:\n    alerts run --once" in text


def test_run_while_serve_holds_the_database_says_to_wait_not_to_use_standby(
    config_path: Path, run_cli: Run
) -> None:
    from alerts.config import load_config
    from alerts.locking import instance_lock

    with instance_lock(load_config(config_path).database, "serve"):
        result = run_cli("run", "--once")

    assert result.exit_code == 1
    assert result.stderr.endswith(
        "(try 'alerts run' again when it has finished; a running 'alerts serve' does this itself)\n"
    )


def test_run_on_a_fresh_machine_creates_the_maildir_with_its_parent_folders(
    write_config: WriteConfig, run_cli: Run, tmp_path: Path
) -> None:
    config = write_config(delivery={"maildir": str(tmp_path / "var" / "mail" / "alerts")})

    result = run_cli("run", "--once", config=config)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "mail" / "alerts" / "new").is_dir()


def test_alerts_web_logs_every_line_as_json_with_log_format_json(config_path: Path) -> None:
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "alerts",
        "--log-format",
        "json",
        "--config",
        str(config_path),
        "web",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # blocks until the server has said it is up (or exited)
            lines.append(line)
            if "Uvicorn running" in line:
                break
        proc.send_signal(signal.SIGTERM)
        lines += proc.stderr.readlines()
    finally:
        proc.kill()
        proc.wait()

    entries = [json.loads(line) for line in lines]  # every line, uvicorn's included
    [serving] = [
        e for e in entries if e["logger"] == "alerts.web" and e["message"].startswith("serving")
    ]
    assert serving["message"] == f"serving Area Alerts on http://127.0.0.1:{port}/ (Ctrl+C to stop)"
    assert any(entry["logger"] == "uvicorn.error" for entry in entries)


def test_subscribers_export_to_a_folder_that_does_not_exist_is_one_line(
    run_cli: Run, tmp_path: Path
) -> None:
    result = run_cli("subscribers", "export", "--out", str(tmp_path / "no" / "such" / "list.csv"))

    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: Could not open file '{tmp_path / 'no' / 'such' / 'list.csv'}': No such file or directory\n"
    )


def test_subscribers_import_mentions_update_only_when_rows_were_kept(
    run_cli: Run, tmp_path: Path
) -> None:
    first, changed = tmp_path / "first.csv", tmp_path / "changed.csv"
    first.write_text("email,areas\nann@example.org,chatham\n", encoding="utf-8")
    changed.write_text("email,areas\nann@example.org,dover\n", encoding="utf-8")

    added = run_cli("subscribers", "import", str(first)).stdout
    kept = run_cli("subscribers", "import", str(changed)).stdout

    assert added == (
        "1 added, 0 updated, 0 unchanged, 0 opted out, 0 skipped, 0 bad rows.\n"
        "New addresses are pending until they confirm: 1 mailed a confirmation.\n"
    )
    assert kept == (
        "0 added, 0 updated, 0 unchanged, 1 kept as they are (--update applies the file to them), "
        "0 opted out, 0 skipped, 0 bad rows.\n"
    )


@pytest.mark.parametrize("command", [("run",), ("serve",), ("web",)], ids=lambda c: c[0])
def test_a_signing_key_file_that_cannot_be_created_fails_at_start_up(
    write_config: WriteConfig,
    run_cli: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    monkeypatch.delenv("ALERTS_SECRET_KEY", raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    config = write_config(security={"secret_key_file": str(blocker / "secret.key")})

    result = run_cli(*command, config=config)

    assert result.exit_code == 2
    [error] = error_lines(result)
    assert error == (
        f"Error: {blocker / 'secret.key'}: cannot read the signing key file: Not a directory "
        "(check security.secret_key_file in config.yaml, or set security.secret_key_env)"
    )


def test_schedule_lines_up_its_columns(config_path: Path, run_cli: Run) -> None:
    make_database(config_path)
    lines = run_cli("schedule").stdout.splitlines()

    jobs = [line for line in lines if not line.startswith(" ")]
    assert [line.split()[0] for line in jobs] == [
        "startup",
        "files",
        "sender",
        "poll",
        "daily",
        "weekly",
        "purge",
    ]
    does = (
        "ingest",
        "read new",
        "send what",
        "read the",
        "daily digests",
        "weekly digests",
        "purge personal",
    )
    assert (
        len({line.index(text) for line, text in zip(jobs, does, strict=True)}) == 1
    )  # the 'does' column
    assert len({line.index("next ") for line in jobs[3:]}) == 1


@pytest.mark.parametrize("kind", ["run", "send"])
def test_rows_of_frequent_runs_are_kept_for_a_month_not_for_ever(
    config_path: Path, run_cli: Run, kind: str
) -> None:
    app = App(config_path)
    old = NOW - KEEP_POLLS - timedelta(days=1)
    app.store.runs.add(kind, old, old, ok=True, summary={})
    app.close()

    assert run_cli(kind).exit_code == 0

    app = App(config_path)
    kept = [run.started_at for run in app.store.runs.history(kind)]
    app.close()
    assert len(kept) == 1 and kept[0] > old


def test_status_shows_a_failed_job_that_later_runs_would_hide(
    config_path: Path, run_cli: Run
) -> None:
    app = App(config_path)
    earlier = NOW - timedelta(hours=3)
    summary = {
        "new": 0,
        "updated": 0,
        "rejected": 0,
        "failed_sources": 0,
        "feeds_written": 0,
        "feeds_unchanged": 0,
        "queued": 0,
        "digests": [],
        "sent": 0,
        "deferred": 0,
        "bounced": 0,
        "failed": 0,
        "failed_stages": ["daily digests"],
        "problems": ["daily digests: the database went away"],
        "seconds": 0.5,
    }
    app.store.runs.add("daily", earlier, earlier, ok=False, summary=summary)
    app.close()
    assert run_cli("run").exit_code == 0

    lines = run_cli("status").stdout.splitlines()
    info = json.loads(run_cli("status", "--json").stdout)

    [run] = [line for line in lines if line.startswith("Last run: ")]
    assert run.startswith("Last run: alerts run at ") and run.endswith(": ok")
    [failure] = [i for i, line in enumerate(lines) if line.startswith("Last run with failures: ")]
    assert lines[failure].startswith("Last run with failures: alerts serve daily digest job at ")
    assert lines[failure].endswith(" (0.5 s): with failures")
    assert "  Failed: daily digests" in lines[failure:]
    assert "  ! daily digests: the database went away" in lines[failure:]
    assert info["last_failure"]["kind"] == "daily" and info["last_run"]["kind"] == "run"


def test_status_forgets_a_failure_once_a_run_of_its_kind_went_well(
    write_config: WriteConfig, run_cli: Run
) -> None:
    config = relay_down(write_config)
    queue_alerts(config)
    assert run_cli("send", config=config).exit_code == 1
    ok_config = write_config()  # the same database, the Maildir backend
    assert run_cli("send", config=ok_config).exit_code == 0

    info = json.loads(run_cli("status", "--json", config=ok_config).stdout)

    assert info["last_failure"] is None
    assert "with failures" not in run_cli("status", config=ok_config).stdout


@pytest.mark.parametrize(
    "command", [("status",), ("run",), ("digest", "--frequency", "daily")], ids=lambda c: c[0]
)
def test_a_sqlite_path_under_a_file_is_a_config_error_not_a_traceback(
    write_config: WriteConfig, run_cli: Run, tmp_path: Path, command: tuple[str, ...]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    config = write_config(database=f"sqlite:///{blocker / 'alerts.db'}")

    result = run_cli(*command, config=config)

    assert result.exit_code == 2
    if command != ("run",):  # works on what exists: it never tries to make the database
        assert result.stderr.startswith(
            f"Error: database: no database file {blocker / 'alerts.db'} ("
        )
        return
    assert result.stderr == (
        f"Error: database: cannot create the folder {blocker}: File exists (check the 'database:' URL in config.yaml)\n"
    )


def test_a_postgresql_database_that_does_not_exist_is_a_config_error(
    write_config: WriteConfig, run_cli: Run, postgres_url: str
) -> None:
    from sqlalchemy.engine import make_url

    missing = make_url(postgres_url).set(database="alerts_no_such_database", query={})
    config = write_config(database=missing.render_as_string(hide_password=False))

    result = run_cli("status", config=config)

    assert result.exit_code == 2
    [error] = result.stderr.splitlines()
    assert error.startswith(
        f"Error: database: cannot open {missing.render_as_string(hide_password=True)}: "
    )
    assert error.endswith(
        "database \"alerts_no_such_database\" does not exist (check the 'database:' URL in config.yaml)"
    )


def test_each_problem_of_a_run_is_a_log_line_naming_the_job(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    from alerts.pipeline import run_once

    config = relay_down(write_config)
    queue_alerts(config)
    app = App(config)

    with caplog.at_level(logging.WARNING, logger="alerts.pipeline"):
        report = run_once(app)
    app.close()

    [record] = [
        r for r in caplog.records if r.name == "alerts.pipeline" and r.levelno == logging.WARNING
    ]
    assert record.getMessage().startswith("send: relay unavailable: 127.0.0.1:")
    assert record.__dict__["ctx_kind"] == "run"
    assert not report.ok


@pytest.mark.parametrize(
    "command", [("status",), ("advisories", "list"), ("schedule",), ("status", "--json")]
)
def test_a_read_only_command_never_creates_a_database_or_its_folder(
    write_config: WriteConfig, run_cli: Run, tmp_path: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "vra" / "alerts.db"  # a mistyped 'var'
    config = write_config(database=f"sqlite:///{typo}")

    result = run_cli(*command, config=config)

    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f"Error: database: no database file {typo} (check the 'database:' URL in config.yaml; "
        "'alerts run --once' or 'alerts ingest' creates it)\n"
    )
    assert not typo.parent.exists()


def test_a_read_only_command_reads_a_database_a_run_made(config_path: Path, run_cli: Run) -> None:
    assert run_cli("run", "--once").exit_code == 0
    assert run_cli("advisories", "list").exit_code == 0
    assert "\nOutbox: " in run_cli("status").stdout


def test_alerts_web_without_the_relay_password_says_to_set_it_or_use_no_send(
    write_config: Callable[..., Path], run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERTS_TEST_RELAY_PASSWORD", raising=False)
    config = write_config(
        delivery={
            "backend": "smtp",
            "smtp": {
                "host": "relay.example.org",
                "username": "alerts",
                "password_env": "ALERTS_TEST_RELAY_PASSWORD",
            },
        }
    )
    result = run_cli("web", config=config)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: delivery.smtp.password_env: environment variable ALERTS_TEST_RELAY_PASSWORD is not set"
        " (export ALERTS_TEST_RELAY_PASSWORD=... before running; or run 'alerts web --no-send' and let"
        " 'alerts serve' send the confirmations)\n"
    )
