"""Erasure reaches every copy we hold: after 'alerts subscribers erase', no byte of the
address is left in the SQLite database file, its WAL, or the Maildir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from alerts.app import App
from alerts.delivery import send_pending
from alerts.subscribers import make_subscription
from alerts.subscribers.mail import send_confirmation
from tests.support import NOW

ADDRESS = "erase.me.please@example.org"


def every_byte(tmp_path: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".yaml"
    )


def test_after_erase_no_byte_of_the_address_is_in_the_database_its_wal_or_the_maildir(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    config_path: Path,
    tmp_path: Path,
) -> None:
    config = write_config(database=f"sqlite:///{tmp_path / 'var' / 'alerts.db'}")
    app = App(config)
    try:
        for email in [ADDRESS, "someone.else@example.org"]:
            subscriber = app.store.subscribers.add(
                make_subscription(app.gazetteer, email, ["medway"], frequency="daily"), now=NOW
            )
            send_confirmation(app.config.mail, app.store, subscriber, ["Medway"], now=NOW)
        assert send_pending(app.config.delivery, app.config.mail, app.store, app.clock).sent == 2
        assert ADDRESS.encode() in every_byte(tmp_path)

        result = run_cli("subscribers", "erase", ADDRESS, "--yes", config=config)
        assert result.exit_code == 0, result.output
        # The web app (this process) still has the database open, as it would.
        held = every_byte(tmp_path)
        assert ADDRESS.encode() not in held and b"erase.me.please" not in held
        assert b"someone.else@example.org" in held
    finally:
        app.close()
