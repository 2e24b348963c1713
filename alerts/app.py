"""What a command or the web app works with: the config, the gazetteer and the store, opened once
and only when the command needs them (so ``--help`` needs no config)."""

from __future__ import annotations

import functools
import os
import threading
from datetime import datetime, timedelta

from alerts.areas import Gazetteer, load_gazetteer
from alerts.clock import Clock, default_clock
from alerts.config import Config, load_config
from alerts.errors import ConfigError, GazetteerError, UnknownArea
from alerts.store import Store, open_store


class App:
    """Opened lazily, shared by the threads of one process (web workers, senders)."""

    def __init__(
        self,
        config_path: str | os.PathLike[str] | None = None,
        *,
        read_only: bool = False,
        clock: Clock | None = None,
    ):
        self.config_path = config_path
        #: The one clock of this process: every stage that needs the time is given it.
        self.clock = clock or default_clock()
        #: A command that only reads: it never creates the database (nor its folder).
        self.read_only = read_only
        self._store: Store | None = None
        # Two threads opening the store at once would run the migrations twice.
        self._store_lock = threading.Lock()

    @functools.cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @functools.cached_property
    def gazetteer(self) -> Gazetteer:
        gazetteer = load_gazetteer(self.config.gazetteer)
        try:
            return gazetteer.with_aliases(dict(self.config.area_aliases))
        except (UnknownArea, GazetteerError) as exc:
            raise ConfigError(
                f"area_aliases: {exc.message}",
                where=str(self.config.root / "config.yaml"),
                hint=exc.hint or "map each name to an area 'alerts areas' lists",
            ) from None

    @property
    def store(self) -> Store:
        with self._store_lock:
            if self._store is None:
                self._store = open_store(self.config.database, create=not self.read_only)
                self._store.advisories.update_interval = timedelta(
                    hours=self.config.digests.update_interval_hours
                )
            return self._store

    def now(self) -> datetime:
        """Business time: ``self.clock.now()``."""
        return self.clock.now()

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.config.tz)

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
