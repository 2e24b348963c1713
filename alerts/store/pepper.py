"""The pepper of the opt-out hashes, kept in the database.

What is kept of an address that may not be kept itself is an HMAC of it (``opt_outs``).
Its key used to be derived from the link-signing key, so losing ``var/secret.key`` (which
is then replaced, with a warning) emptied the suppression list: every erased or bounced
address could be imported again. The key now lives beside the hashes, made once: from
the signing keys as they derived it until now, so every hash already kept still matches
(one pepper per signing key, the current one first), or at random on a database that
keeps no hash yet. After that, a missing or different signing key is only a matter of
links, never of who may be mailed.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from alerts.config import SecurityConfig
from alerts.errors import ConfigError
from alerts.store.schema import opt_outs, site_keys
from alerts.tokens import derived_pepper, load_secret_keys, peppered_hash

NAME = "opt-out-pepper"


class Pepper:
    """Reads (once per process) or makes the opt-out pepper; hashes mailboxes with it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._peppers: list[bytes] | None = None
        self._lock = threading.Lock()

    def mailbox_hashes(self, security: SecurityConfig, email: str) -> list[str]:
        """The keyed hashes of a mailbox (the whole address in lower case), the one new
        hashes are made with first."""
        mailbox = email.strip().lower()
        return [peppered_hash(pepper, mailbox) for pepper in self.peppers(security)]

    def peppers(self, security: SecurityConfig) -> list[bytes]:
        with self._lock:
            if self._peppers is None:
                self._peppers = self._read() or self._make(security)
            return self._peppers

    def _read(self) -> list[bytes] | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(site_keys.c.value).where(site_keys.c.name == NAME)).scalar()
        return [bytes.fromhex(part) for part in value.split()] if value else None

    def _make(self, security: SecurityConfig) -> list[bytes]:
        with self.engine.connect() as conn:
            kept = conn.execute(select(opt_outs.c.mailbox_hash).limit(1)).first() is not None
        if kept:
            _check_key_present(security)
            peppers = [derived_pepper(key) for key in load_secret_keys(security)]
        else:
            peppers = [secrets.token_bytes(32)]
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(site_keys).values(name=NAME, value=" ".join(p.hex() for p in peppers))
                )
        except IntegrityError:
            pass  # another process made it first: use its
        return self._read() or peppers


def _check_key_present(security: SecurityConfig) -> None:
    """Hashes made from a signing key that is gone cannot be matched: say so rather than
    let a new random key (made when the file is missing) empty the suppression list."""
    if (
        os.environ.get(security.secret_key_env) is None
        and not Path(security.secret_key_file).is_file()
    ):
        raise ConfigError(
            f"the opt-out hashes in the database were made with the signing key in {security.secret_key_file}, which is missing",
            where="security.secret_key_file",
            hint="restore the file from a backup (or set security.secret_key_env to the old key) and run the command again",
        )
