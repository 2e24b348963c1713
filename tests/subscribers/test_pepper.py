"""Suppression survives the loss of the signing key: opt-out hashes use a pepper kept in
the database, made once from the key as it was, so hashes made before still match and
a lost key file changes links only, never who may be mailed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from alerts.app import App
from alerts.store.database import create_db_engine, migrate
from alerts.store.fixtures import Fixtures
from alerts.tokens import keyed_hash, load_secret_key
from tests.support import NOW

GONE = ["erased@example.org", "Bounced@Example.org", "left@example.org"]


def test_after_the_upgrade_and_the_loss_of_the_key_file_every_hashed_address_is_still_refused(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    config_path: Path,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    config = write_config(database=sqlite_url)
    # A database as it was before the pepper: hashes keyed with the signing key.
    engine = create_db_engine(sqlite_url)
    migrate(engine, "0009")
    key = load_secret_key(App(config).config.security)
    Fixtures(engine).insert_rows(
        "opt_outs",
        [
            {"mailbox_hash": keyed_hash(key, email.lower()), "status": status, "hashed_at": NOW}
            for email, status in zip(GONE, ["erased", "suppressed", "unsubscribed"], strict=True)
        ],
    )
    engine.dispose()
    app = App(config)
    try:
        assert [
            app.store.retention.hashed_opt_out(app.config.security, email) for email in GONE
        ] == [
            "erased",
            "suppressed",
            "unsubscribed",
        ]
    finally:
        app.close()

    (tmp_path / "secret.key").unlink()  # lost: a new random one is made on next use
    listing = tmp_path / "list.csv"
    listing.write_text("email,areas\n" + "".join(f"{e},medway\n" for e in GONE), encoding="utf-8")
    result = run_cli("subscribers", "import", str(listing), config=config)
    assert result.exit_code == 0, result.output
    assert "0 added" in result.stdout and "3 skipped" in result.stdout
    assert result.stderr.count("kept as a keyed hash") == 3
    app = App(config)
    try:
        assert all(app.store.subscribers.find_mailbox(email) is None for email in GONE)
        assert (
            app.store.retention.hashed_opt_out(app.config.security, "BOUNCED@example.org")
            == "suppressed"
        )
    finally:
        app.close()
