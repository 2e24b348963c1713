"""What a subscription is, validated: a normalised address, canonical area slugs, a
frequency and a header-safe name. Shared by the CLI, list imports and the web forms."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email

from alerts.areas import Gazetteer
from alerts.errors import AlertsError
from alerts.text import one_line
from alerts.types import Frequency

MAX_NAME = 100


class Problem(enum.StrEnum):
    """What is wrong with a subscription's input, as data: the web form words each one
    its own way (GOV.UK's), the CLI prints the error's message."""

    EMAIL_MISSING = "email-missing"
    EMAIL_FORMAT = "email-format"
    EMAIL_NOT_ASCII = "email-not-ascii"
    AREAS_MISSING = "areas-missing"
    FREQUENCY_UNKNOWN = "frequency-unknown"
    EDITION_UNKNOWN = "edition-unknown"
    OTHER = "other"


class InvalidSubscriber(AlertsError):
    """An address, area, frequency or name that cannot be used for a subscription;
    ``problem`` says which."""

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        problem: Problem = Problem.OTHER,
    ):
        super().__init__(message, where=where, hint=hint)
        self.problem = problem


class OptedOut(AlertsError):
    """The address unsubscribed or was suppressed: it may not be re-added (PECR)."""


@dataclass(frozen=True)
class Subscription:
    """What someone asked for, validated: a normalised address and canonical area slugs."""

    email: str
    areas: tuple[str, ...]
    frequency: Frequency = Frequency.DAILY
    name: str | None = None
    forwardable: bool = False
    urgent: bool = True


@dataclass(frozen=True)
class Preferences:
    """A change of preferences: only the fields given (not None) change."""

    areas: tuple[str, ...] | None = None
    frequency: Frequency | None = None
    name: str | None = None
    forwardable: bool | None = None
    urgent: bool | None = None

    def values(self) -> dict[str, Any]:
        return {
            k: (v.value if isinstance(v, Frequency) else v)
            for k, v in (
                ("frequency", self.frequency),
                ("name", self.name),
                ("forwardable", self.forwardable),
                ("urgent", self.urgent),
            )
            if v is not None
        }


def normalise_email(text: str) -> str:
    """The address as stored: the local part as given, the domain in lower case and in
    its ASCII form (``bücher.example`` -> ``xn--bcher-kva.example``), so that every
    stored address can be sent through any relay.

    An address whose local part is not ASCII would need SMTPUTF8 from the relay and
    from every server after it; it is refused here, at every door (CLI, imports, web
    form), rather than stored to fail at each send. Raises :class:`InvalidSubscriber`
    with the reason. No DNS lookups.
    """
    text = (text or "").strip()
    if not text:
        raise InvalidSubscriber("an email address is required", problem=Problem.EMAIL_MISSING)
    local = text.rpartition("@")[0]
    if local and not local.isascii():
        raise InvalidSubscriber(
            f"{one_line(text, 80)!r} has characters outside ASCII before the @, and alerts can only be"
            " sent to addresses written in ASCII letters, digits and punctuation",
            hint="use another address for this subscriber",
            problem=Problem.EMAIL_NOT_ASCII,
        )
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidSubscriber(
            f"{one_line(text, 80)!r} is not a valid email address: {exc}",
            problem=Problem.EMAIL_FORMAT,
        ) from None
    domain = result.ascii_domain or result.domain
    return f"{result.local_part}@{domain.lower()}"


def resolve_areas(gazetteer: Gazetteer, names: Iterable[str]) -> tuple[str, ...]:
    """Canonical slugs for area names, slugs or postcodes (``ME4`` -> ``medway``),
    without repeats, in gazetteer order. At least one is required."""
    slugs: set[str] = set()
    for name in names:
        name = name.strip()
        if name:
            slugs.add(gazetteer.resolve(name))
    if not slugs:
        raise InvalidSubscriber(
            "at least one area is required",
            hint="e.g. --area medway or --area ME4",
            problem=Problem.AREAS_MISSING,
        )
    order = _area_order(gazetteer)
    return tuple(sorted(slugs, key=lambda slug: order.get(slug, len(order))))


@functools.lru_cache(maxsize=8)
def _area_order(gazetteer: Gazetteer) -> dict[str, int]:
    # Walking the gazetteer in order costs more than everything else about a row.
    return {node.slug: index for index, node in enumerate(gazetteer)}


def parse_frequency(value: str | Frequency) -> Frequency:
    try:
        return Frequency(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(f.value for f in Frequency)
        raise InvalidSubscriber(
            f"unknown frequency {one_line(str(value), 40)!r}; use one of {choices}",
            problem=Problem.FREQUENCY_UNKNOWN,
        ) from None


#: The form's editions: a personal one (links to change or leave in every email), and
#: one to forward (no personal link in the body; its owner manages it by email).
EDITIONS = {"personal": False, "forwardable": True}


def parse_edition(value: str | None) -> bool | None:
    """Whether the edition named is the forwardable one; None when none is named."""
    text = (value or "").strip().lower()
    if not text:
        return None
    try:
        return EDITIONS[text]
    except KeyError:
        raise InvalidSubscriber(
            f"unknown edition {one_line(str(value), 40)!r}; use one of {', '.join(EDITIONS)}",
            problem=Problem.EDITION_UNKNOWN,
        ) from None


def clean_name(value: str | None) -> str | None:
    """A display name that is safe in a header: one line, no control characters."""
    if value is None:
        return None
    value = one_line(str(value), MAX_NAME)
    return value or None


def make_subscription(
    gazetteer: Gazetteer,
    email: str,
    areas: Iterable[str],
    *,
    frequency: str | Frequency = Frequency.DAILY,
    name: str | None = None,
    forwardable: bool = False,
    urgent: bool = True,
) -> Subscription:
    """Validate raw input into a :class:`Subscription` (raises InvalidSubscriber, UnknownArea)."""
    return Subscription(
        email=normalise_email(email),
        areas=resolve_areas(gazetteer, areas),
        frequency=parse_frequency(frequency),
        name=clean_name(name),
        forwardable=bool(forwardable),
        urgent=bool(urgent),
    )
