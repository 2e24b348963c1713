"""A batch of advisories: parse each, store it, and report what happened. One bad
advisory is reported and skipped, never fatal to the batch."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DataError, IntegrityError

from alerts.areas import Gazetteer
from alerts.errors import AdvisoryError, AlertsError
from alerts.ingest.build import ParsedFile
from alerts.ingest.dates import LONDON
from alerts.ingest.files import SUFFIXES, parse_advisory_file
from alerts.ingest.lifecycle import Surge
from alerts.store import IngestResult, Outcome, Store
from alerts.text import cut_at_word
from alerts.types import AdvisoryInput

log = logging.getLogger("alerts.ingest")


@dataclass
class IngestReport:
    """What one ingest run did. ``rejected`` holds one error per skipped advisory."""

    new: list[int] = field(default_factory=list)
    #: Where each new advisory came from (a file's path, a feed's URL), by id.
    origins: dict[int, str] = field(default_factory=dict)
    updated: list[int] = field(default_factory=list)
    unchanged: int = 0
    #: Items another source had already stored (noted on that advisory, not stored).
    duplicates: int = 0
    rejected: list[AdvisoryError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Sources that could not be read at all (a feed that is down); retried next poll.
    source_errors: list[AlertsError] = field(default_factory=list)
    #: Where each advisory outside coverage came from (stored, never mailed, in no feed).
    outside_coverage: list[str] = field(default_factory=list)
    #: Where each advisory that named no place (so went force-wide) came from.
    no_place: list[str] = field(default_factory=list)
    #: Files in a watched folder still being written: not read yet.
    unsettled: list[str] = field(default_factory=list)
    #: Seconds until the first of them will have settled (look again then).
    recheck_in: float | None = None
    #: Files held as replacements of an existing advisory (alerts.replacement), by new id.
    held: list[int] = field(default_factory=list)
    #: Sources holding a batch (surging) after this poll.
    surges: list[Surge] = field(default_factory=list)
    #: Feeds (URLs) this run did not poll after all: the answer was fetched before
    #: another process stored a newer poll (dropped, the newer one stands), or there was
    #: none to store. Neither their health nor their lifecycle moves; the next poll asks.
    dropped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.source_errors

    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "updated": len(self.updated),
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "failed_sources": len(self.source_errors),
            "outside_coverage": len(self.outside_coverage),
            "no_place": len(self.no_place),
        }

    def merge(self, other: IngestReport) -> None:
        self.new += other.new
        self.origins.update(other.origins)
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.warnings += other.warnings
        self.source_errors += other.source_errors
        self.outside_coverage += other.outside_coverage
        self.no_place += other.no_place
        self.unsettled += other.unsettled
        self.surges += other.surges
        self.held += other.held
        self.dropped += other.dropped
        if other.recheck_in is not None:
            self.recheck_in = min(self.recheck_in or other.recheck_in, other.recheck_in)


Progress = Callable[[int], None]


def find_advisory_files(paths: Iterable[Path]) -> tuple[list[Path], list[AdvisoryError]]:
    """Files to read: each file given, and every ``*.md`` under each folder given
    (hidden files and folders skipped), in a stable order."""
    found: list[Path] = []
    missing: list[AdvisoryError] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    # A folder named *.md is listed too, so it is reported, not silently skipped.
                    if p.suffix.lower() in SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.exists():
            found.append(path)
        else:
            missing.append(
                AdvisoryError("no such file or folder", where=str(path), hint="check the path")
            )
    return found, missing


def ingest_files(
    paths: Iterable[Path],
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    zone: ZoneInfo = LONDON,
    progress: Callable[[int], Progress] | None = None,
) -> IngestReport:
    """Parse and store every advisory file under ``paths``.

    ``progress``, if given, is called once with the number of files and returns a
    function called with the count done after each file (the CLI draws a bar with it).
    """
    files, missing = find_advisory_files(paths)
    report = IngestReport(rejected=missing)
    advance = progress(len(files)) if progress else None
    for path in files:
        parse = functools.partial(parse_advisory_file, path, gazetteer, now=now, zone=zone)
        report.merge(_ingest_one(parse, str(path), store, gazetteer, now))
        if advance:
            advance(1)
    return report


def save_parsed(
    items: Iterable[tuple[str, Callable[[], ParsedFile]]],
    store: Store,
    gazetteer: Gazetteer,
    now: datetime,
) -> IngestReport:
    """Store advisories from any source: each item names where it came from and how to
    parse it (a parser that raises :class:`AdvisoryError` for a bad one)."""
    report = IngestReport()
    for where, parse in items:
        report.merge(_ingest_one(parse, where, store, gazetteer, now))
    return report


def _ingest_one(
    parse: Callable[[], ParsedFile], where: str, store: Store, gazetteer: Gazetteer, now: datetime
) -> IngestReport:
    report = IngestReport()
    try:
        parsed = parse()
    except AdvisoryError as exc:
        # INFO, not WARNING: the report carries it and whoever runs the batch shows it
        # (the CLI prints it once; a second copy from the log would be noise).
        log.info("rejected %s", exc)
        report.rejected.append(exc)
        return report
    except Exception as exc:  # a bug must not cost the rest of the batch
        log.exception("unexpected error reading %s", where)
        report.rejected.append(
            AdvisoryError(
                f"unexpected error: {exc!r}", where=where, hint="please report this as a bug"
            )
        )
        return report
    report.warnings += parsed.warnings
    for warning in parsed.warnings:
        log.info("%s", warning)
    decision = parsed.advisory.decision
    if decision is not None and decision.outside_coverage:
        report.outside_coverage.append(where)
    if decision is not None and decision.no_place:
        report.no_place.append(where)
    try:
        result = store_advisory(parsed.advisory, store, gazetteer, now)
    except (DataError, IntegrityError) as exc:
        # The database refused this one advisory's values: report it, keep the batch going.
        # (A database that cannot be reached at all still stops the run.)
        log.exception("cannot store %s", where)
        detail = str(exc.orig or exc).splitlines()[0]
        report.rejected.append(
            AdvisoryError(
                f"the database refused it: {detail}",
                where=where,
                hint="please report this as a bug",
            )
        )
        return report
    if result.replaces is not None:
        report.warnings.append(replacement_warning(where, result.advisory_id, result.replaces))
        log.info("%s", report.warnings[-1])  # the report carries it, as other warnings
    if result.outcome is Outcome.NEW:
        report.new.append(result.advisory_id)
        report.origins[result.advisory_id] = where
    elif result.outcome is Outcome.UPDATED:
        report.updated.append(result.advisory_id)
    elif result.outcome is Outcome.HELD:
        report.held.append(result.advisory_id)
    elif result.outcome is Outcome.DUPLICATE:
        report.duplicates += 1
    else:
        report.unchanged += 1
    return report


def replacement_warning(where: str, advisory_id: int, replaces: tuple[int, str, datetime]) -> str:
    """What an author is told of a file that took an existing advisory's URL."""
    old_id, title, published = replaces
    return (
        f"{where} replaces advisory {old_id} '{cut_at_word(title, 40)}' from {published.year}, held as"
        f" advisory {advisory_id}: give a new advisory its own url, or 'alerts advisories release {advisory_id}'"
    )


def store_advisory(
    item: AdvisoryInput, store: Store, gazetteer: Gazetteer, now: datetime
) -> IngestResult:
    """Save one advisory with the areas its decision gave it (none when outside coverage;
    an input made without a decision keeps the most specific of its tags)."""
    areas = item.decision.areas if item.decision else gazetteer.most_specific(item.areas)
    return store.advisories.save(item, set(areas), now)
