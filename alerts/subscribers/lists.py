"""Subscriber lists as coordinators keep them in ``subscribers/``: YAML or CSV, read
with line numbers so every bad row is reported as ``file:line`` and skipped while the
rest is imported; and the same formats written back out by export.

Import is idempotent and obeys PECR: an address that unsubscribed or was suppressed is
never made active again, whatever the file says; a row saying ``status: unsubscribed``
is honoured (stopping mail is always allowed), so an export carries its do-not-mail
rows into another installation.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from alerts.areas import Gazetteer
from alerts.errors import AlertsError, NotFound, UnknownArea
from alerts.store import Store
from alerts.store.subscribers import (
    ACTIVE,
    OPTED_OUT,
    PENDING,
    SUPPRESSED,
    UNSUBSCRIBED,
    same_preferences,
)
from alerts.subscribers.validation import (
    InvalidSubscriber,
    OptedOut,
    Subscription,
    make_subscription,
)
from alerts.types import Subscriber, SubscriberStatus

INSERT_BATCH = 500
COLUMNS = ("email", "name", "areas", "frequency", "forwardable", "urgent", "status")
_TRUE = {"yes", "y", "true", "1", "on"}
_FALSE = {"no", "n", "false", "0", "off"}


class SubscriberListError(AlertsError):
    """A whole list file is unreadable: wrong format, bad YAML, unknown column."""


@dataclass(frozen=True)
class ListRow:
    where: str  # "file:line"
    values: dict[str, Any]


@dataclass(frozen=True)
class RowProblem:
    where: str
    email: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.email + ': ' if self.email else ''}{self.reason}"


@dataclass
class ImportReport:
    """What an import did. ``skipped``: rows left alone on purpose (opted out, ...);
    ``bad``: rows that could not be read or validated."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0
    opted_out: int = 0
    skipped: list[RowProblem] = field(default_factory=list)
    bad: list[RowProblem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "opted_out": self.opted_out,
            "skipped": [vars(p) for p in self.skipped],
            "bad": [vars(p) for p in self.bad],
        }


# -- reading --------------------------------------------------------------------


def read_list(path: Path) -> Iterator[ListRow]:
    """The rows of a YAML (``.yaml``/``.yml``) or CSV (``.csv``) subscriber list."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml"):
        raise SubscriberListError(
            "unknown list format",
            where=str(path),
            hint="use a .csv or .yaml file like subscribers/example.csv",
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SubscriberListError("file not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberListError(
            f"cannot read the file: {exc}", where=str(path), hint="save it as UTF-8"
        ) from None
    return _read_csv(text, str(path)) if suffix == ".csv" else _read_yaml(text, str(path))


def _read_csv(text: str, name: str) -> Iterator[ListRow]:
    # Comment lines become blank lines (which csv skips), so line numbers stay true.
    lines = [
        "\n" if line.lstrip().startswith("#") else line for line in io.StringIO(text, newline="")
    ]
    reader = csv.reader(lines)
    header: list[str] | None = None
    start = 1
    for record in reader:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in record]
            unknown = [column for column in header if column not in COLUMNS]
            if unknown or "email" not in header:
                raise SubscriberListError(
                    f"unknown column {unknown[0]!r}" if unknown else "no 'email' column",
                    where=f"{name}:{line}",
                    hint=f"the header row names columns from: {', '.join(COLUMNS)}",
                )
            continue
        if len(record) > len(header):
            yield ListRow(
                f"{name}:{line}", {"_error": f"{len(record)} values for {len(header)} columns"}
            )
            continue
        values = {
            column: cell.strip()
            for column, cell in zip(header, record, strict=False)
            if cell.strip()
        }
        yield ListRow(f"{name}:{line}", values)


def _read_yaml(text: str, name: str) -> Iterator[ListRow]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return
        items = root
        if isinstance(root, yaml.MappingNode):
            found = [value for key, value in root.value if key.value == "subscribers"]
            if not found:
                raise SubscriberListError(
                    "expected a list, or a mapping with a 'subscribers:' list",
                    where=f"{name}:{root.start_mark.line + 1}",
                )
            items = found[0]
        if not isinstance(items, yaml.SequenceNode):
            raise SubscriberListError(
                "'subscribers' must be a list", where=f"{name}:{items.start_mark.line + 1}"
            )
        for item in items.value:
            where = f"{name}:{item.start_mark.line + 1}"
            value = loader.construct_object(item, deep=True)
            if isinstance(value, str):
                value = {"email": value}  # a bare address: defaults for the rest
            if not isinstance(value, dict):
                yield ListRow(
                    where, {"_error": "each entry must be an address or a mapping with 'email:'"}
                )
                continue
            unknown = [str(k) for k in value if k not in COLUMNS]
            if unknown:
                yield ListRow(
                    where, {"_error": f"unknown key {unknown[0]!r}; keys are {', '.join(COLUMNS)}"}
                )
                continue
            yield ListRow(where, value)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise SubscriberListError(
            f"invalid YAML: {exc.problem}", where=f"{name}:{mark.line + 1}" if mark else name
        ) from None
    finally:
        loader.dispose()


def _flag(value: Any, default: bool, key: str) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidSubscriber(f"{key} must be yes or no, got {str(value)[:20]!r}")


def _areas(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [part for chunk in str(value).replace("|", ";").split(";") for part in chunk.split(",")]


# -- importing ------------------------------------------------------------------


def import_list(
    store: Store,
    gazetteer: Gazetteer,
    path: Path,
    *,
    now: datetime,
    pending: bool = False,
    update: bool = False,
    on_pending: Callable[[Subscriber], None] | None = None,
    hashed: Callable[[str], bool] | None = None,
    on_added: Callable[[Subscriber], None] | None = None,
    origin: str | None = None,
) -> ImportReport:
    """Import a subscriber list. New addresses become active with their watermark at
    ``now`` (the coordinator vouches for them), or pending with ``pending`` (then
    ``on_pending`` is called for each, to send the confirmation); ``on_added`` is called
    for every address added, pending or active (the CLI mails each). Existing pending or
    active ones keep their own preferences unless ``update``. Opted-out addresses are
    skipped with the reason, and so are those ``hashed`` says are kept only as a hash
    of an opt-out or an erasure. ``origin`` is recorded on each new row (default
    ``import:<file name>``). Raises :class:`SubscriberListError` for an unreadable file.
    """
    importer = _Importer(
        store,
        gazetteer,
        origin or f"import:{path.name}",
        now=now,
        pending=pending,
        update=update,
        on_pending=on_pending,
    )
    importer.hashed = hashed
    importer.on_added = on_added
    for row in read_list(path):
        importer.take(row)
    importer.flush()
    return importer.report


class _Importer:
    """One import: the addresses already stored and opted out (read once, so a new row,
    most of a first import, costs no lookup), the addresses seen in the file, and the
    new rows waiting to be inserted in a batch."""

    def __init__(
        self,
        store: Store,
        gazetteer: Gazetteer,
        origin: str,
        *,
        now: datetime,
        pending: bool,
        update: bool,
        on_pending: Callable[[Subscriber], None] | None,
    ):
        self.store = store
        self.gazetteer = gazetteer
        self.origin = origin
        self.now = now
        self.pending = pending
        self.update = update
        self.on_pending = on_pending
        self.report = ImportReport()
        self.seen: dict[str, str] = {}
        self.stored, self.opted_out_ids = store.subscribers.address_book()
        self.new_rows: list[tuple[str, Subscription, SubscriberStatus]] = []
        #: Whether an address is kept only as the hash of an opt-out or an erasure.
        self.hashed: Callable[[str], bool] | None = None
        #: Called for every address added, whatever its status.
        self.on_added: Callable[[Subscriber], None] | None = None

    def take(self, row: ListRow) -> None:
        """Check one row of the list and act on it."""
        parsed = self._parse(row)
        if parsed is None:
            return
        subscription, wanted = parsed
        email = subscription.email
        existing = self._existing(email, wanted)
        if wanted in OPTED_OUT:  # the list says stop: always honoured
            self._opt_out(subscription, wanted, existing)
        elif existing is not None and existing.status in OPTED_OUT:
            how = "unsubscribed" if existing.status is UNSUBSCRIBED else "was suppressed"
            self.report.skipped.append(
                RowProblem(
                    row.where, email, f"{how}: not re-added (PECR); only they can subscribe again"
                )
            )
        elif existing is None and self.hashed is not None and self.hashed(email):
            self.report.skipped.append(
                RowProblem(
                    row.where,
                    email,
                    "opted out or erased (kept as a keyed hash): not re-added (PECR)",
                )
            )
        elif existing is not None and not self.update:
            same = same_preferences(existing, subscription)
            self.report.unchanged += same
            self.report.kept += not same
        else:
            status = PENDING if self.pending or wanted is PENDING else ACTIVE
            if existing is None:
                # New, and checked against the opt-outs above: inserted in batches, since a
                # commit per row (an fsync each) would cost more than all the rest.
                self.new_rows.append((row.where, subscription, status))
                if len(self.new_rows) >= INSERT_BATCH:
                    self.flush()
            else:
                self._save(row.where, subscription, status)

    def _parse(self, row: ListRow) -> tuple[Subscription, SubscriberStatus | None] | None:
        """The row's subscription and wanted status, or None when it is bad or repeated
        (recorded in the report)."""
        email = str(row.values.get("email") or "").strip() or None
        try:
            if "_error" in row.values:
                raise InvalidSubscriber(row.values["_error"])
            subscription = make_subscription(
                self.gazetteer,
                str(row.values.get("email") or ""),
                _areas(row.values.get("areas")),
                frequency=str(row.values.get("frequency") or "daily"),
                name=row.values.get("name"),
                forwardable=_flag(row.values.get("forwardable"), False, "forwardable"),
                urgent=_flag(row.values.get("urgent"), True, "urgent"),
            )
            wanted = _status(row.values.get("status"))
        except (InvalidSubscriber, UnknownArea) as exc:
            self.report.bad.append(RowProblem(row.where, email, str(exc)))
            return None
        if subscription.email.lower() in self.seen:  # one mailbox, however it is spelled
            line = self.seen[subscription.email.lower()]
            self.report.bad.append(
                RowProblem(row.where, subscription.email, f"repeats the address on line {line}")
            )
            return None
        self.seen[subscription.email.lower()] = row.where.rsplit(":", 1)[1]
        return subscription, wanted

    def _existing(self, email: str, wanted: SubscriberStatus | None) -> Subscriber | None:
        """The stored subscriber of this address, or of an opted-out spelling of it."""
        existing = (
            self.store.subscribers.find_mailbox(email) if email.lower() in self.stored else None
        )
        if existing is None and wanted not in OPTED_OUT and email.lower() in self.opted_out_ids:
            existing = self.store.subscribers.get(self.opted_out_ids[email.lower()])
        return existing

    def _opt_out(
        self, subscription: Subscription, wanted: SubscriberStatus, existing: Subscriber | None
    ) -> None:
        email = subscription.email
        if existing is None:
            ids = self.store.subscribers.insert_new(
                [(subscription, wanted)], now=self.now, origin=self.origin
            )
            if ids is not None:
                self.opted_out_ids[email.lower()] = ids[0]
                self.report.opted_out += 1
                return
            # Added by someone else since we looked: stop that one instead.
            existing = self.store.subscribers.find(email)
            if existing is None:
                raise NotFound(
                    f"{email} was added and removed during the import", hint="run the import again"
                )
        if existing.status in OPTED_OUT:
            self.report.unchanged += 1
            return
        subscribers = self.store.subscribers
        stop = subscribers.suppress if wanted is SUPPRESSED else subscribers.unsubscribe
        stop(existing.id, now=self.now)
        self.opted_out_ids[email.lower()] = existing.id
        self.report.opted_out += 1

    def _save(self, where: str, subscription: Subscription, status: SubscriberStatus) -> None:
        try:
            subscriber, outcome = self.store.subscribers.save(
                subscription, now=self.now, status=status, origin=self.origin
            )
        except OptedOut as exc:  # opted out between our look and our write
            self.report.skipped.append(RowProblem(where, subscription.email, exc.message))
            return
        setattr(self.report, outcome, getattr(self.report, outcome) + 1)
        if outcome == "added":
            self._added(subscriber)

    def _added(self, subscriber: Subscriber) -> None:
        if subscriber.status is PENDING and self.on_pending is not None:
            self.on_pending(subscriber)
        if self.on_added is not None:
            self.on_added(subscriber)

    def flush(self) -> None:
        """Insert the new rows waiting, in one transaction (row by row when one of them
        was added meanwhile by someone else)."""
        batch = list(self.new_rows)
        self.new_rows.clear()
        if not batch:
            return
        ids = self.store.subscribers.insert_new(
            [(sub, status) for _, sub, status in batch], now=self.now, origin=self.origin
        )
        if ids is None:
            for where, subscription, status in batch:
                self._save(where, subscription, status)
            return
        self.report.added += len(ids)
        if self.on_pending is not None or self.on_added is not None:
            for new_id in ids:
                self._added(self.store.subscribers.get(new_id))


def _status(value: Any) -> SubscriberStatus | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        return SubscriberStatus(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in SubscriberStatus)
        raise InvalidSubscriber(
            f"unknown status {str(value)[:20]!r}; use one of {choices}"
        ) from None


# -- exporting ------------------------------------------------------------------


def export_row(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "areas": list(subscriber.areas),
        "frequency": subscriber.frequency.value,
        "forwardable": subscriber.forwardable,
        "urgent": subscriber.urgent,
        "status": subscriber.status.value,
    }


def export_list(
    store: Store, out: TextIO, *, fmt: str = "csv", status: SubscriberStatus | None = None
) -> int:
    """Write subscribers (every status by default, so do-not-mail rows travel too) in a
    form :func:`import_list` reads back. Streams; returns how many were written."""
    count = 0
    rows = (export_row(s) for s in store.subscribers.iterate(status=status))
    if fmt == "csv":
        out.write(
            "# Area Alerts subscribers. areas: slugs separated by ';'. forwardable, urgent: yes/no.\n"
        )
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            row["areas"] = ";".join(row["areas"])
            for key in ("forwardable", "urgent"):
                row[key] = "yes" if row[key] else "no"
            writer.writerow([row[c] if row[c] is not None else "" for c in COLUMNS])
            count += 1
    elif fmt == "yaml":
        out.write(
            "# Area Alerts subscribers: import with 'alerts subscribers import FILE'.\nsubscribers:\n"
        )
        for row in rows:
            if row["name"] is None:
                del row["name"]
            out.write(
                yaml.safe_dump([row], allow_unicode=True, sort_keys=False, default_flow_style=None)
            )
            count += 1
        if count == 0:
            out.write("  []\n")
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return count
