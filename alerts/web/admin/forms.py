"""Reading the console's forms: areas typed as names, slugs or postcodes, and a composed
advisory, checked field by field, then written as an advisory file's text so that it
is read by the very parser that reads the files in a source folder."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import yaml
from starlette.datastructures import FormData

from alerts.areas import Gazetteer
from alerts.config import SiteConfig
from alerts.errors import AdvisoryError, UnknownArea
from alerts.ingest.build import ParsedFile
from alerts.ingest.files import parse_advisory_bytes
from alerts.store import Store
from alerts.types import Frequency

DRAFT = re.compile(r"^[0-9a-f]{32}$")
MAX_TITLE = 200
MAX_BODY = 40_000
MAX_ADVICE = 2_000
#: Where a console advisory's own address lives: /advisories/new/<draft> sends the
#: reader on to its archive page.
NEW_PATH = "/advisories/new/"


def parse_areas(gazetteer: Gazetteer, text: str) -> list[str]:
    """``"Chatham, ME4; Swale"`` -> slugs; raises :class:`UnknownArea` naming the one
    not known."""
    slugs: list[str] = []
    for part in re.split(r"[,;\n]", text[:2000]):
        if part.strip():
            slug = gazetteer.resolve(part.strip())
            if slug not in slugs:
                slugs.append(slug)
    return slugs


@dataclass
class Compose:
    """A composed advisory as the form holds it; ``errors`` maps a field to what is wrong."""

    draft: str
    title: str = ""
    areas: str = ""
    priority: str = "normal"
    body: str = ""
    advice: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    slugs: list[str] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: FormData, gazetteer: Gazetteer) -> Compose:
        def text(name: str) -> str:
            value = form.get(name)
            return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""

        draft = text("draft")
        compose = cls(
            draft=draft if DRAFT.match(draft) else "",
            title=" ".join(text("title").split()),
            areas=text("areas"),
            priority=text("priority") or "normal",
            body=text("body"),
            advice=text("advice"),
        )
        compose.check(gazetteer)
        return compose

    def check(self, gazetteer: Gazetteer) -> None:
        errors = self.errors
        if not self.draft:
            errors["draft"] = "This form has lost its draft number: start a new advisory."
        if not self.title:
            errors["title"] = "Enter a title: it is the subject line of the email."
        elif len(self.title) > MAX_TITLE:
            errors["title"] = f"A title has at most {MAX_TITLE} characters."
        try:
            self.slugs = parse_areas(gazetteer, self.areas)
        except UnknownArea as exc:
            errors["areas"] = exc.message + (f" ({exc.hint})" if exc.hint else "")
        else:
            if not self.slugs:
                errors["areas"] = (
                    "Enter at least one area (a town, a district, a postcode such as ME4, or Kent for everyone)."
                )
        if self.priority not in ("normal", "urgent"):
            errors["priority"] = "Choose normal or urgent."
        if not self.body:
            errors["body"] = "Enter the text of the advisory."
        elif len(self.body) > MAX_BODY:
            errors["body"] = f"The text has at most {MAX_BODY} characters."
        if len(self.advice) > MAX_ADVICE:
            errors["advice"] = f"The advice box has at most {MAX_ADVICE} characters."

    def url(self, base_url: str) -> str:
        return f"{base_url}{NEW_PATH}{self.draft}"

    def as_file(self, base_url: str, published: datetime, gazetteer: Gazetteer) -> bytes:
        """The advisory as the text of an advisory file (YAML front matter, Markdown)."""
        meta: dict[str, object] = {
            "title": self.title,
            "url": self.url(base_url),
            "areas": [gazetteer.name_of(slug) for slug in self.slugs],
            "priority": self.priority,
            "publish": {"date": published.strftime("%H:%M %d/%m/%Y")},
        }
        if self.advice:
            # Kept with the advisory (front matter the parser does not read is kept);
            # the email layout's advice box shows it once it reads this key.
            meta["advice"] = self.advice
        front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
        return f"---\n{front}---\n\n{self.body}\n".encode()

    def parse(
        self, site: SiteConfig, zone: ZoneInfo, gazetteer: Gazetteer, now: datetime, author: str
    ) -> ParsedFile:
        """Through the advisory file parser, as a file in a source folder would be
        (its dates local to ``zone``, its links on ``site``)."""
        data = self.as_file(site.base_url, now.astimezone(zone), gazetteer)
        try:
            return parse_advisory_bytes(data, f"console:{author}", gazetteer, now=now, zone=zone)
        except AdvisoryError as exc:
            self.errors["body"] = exc.message
            raise


@dataclass(frozen=True)
class Reach:
    """How many active subscribers an advisory reaches, by frequency, and how many of
    them get it at once (immediate ones; daily and weekly ones too when it is urgent,
    unless they opted out of urgent alerts)."""

    by_frequency: dict[str, int]
    at_once: int

    @property
    def total(self) -> int:
        return sum(self.by_frequency.values())


def count_reach(
    store: Store, gazetteer: Gazetteer, areas: frozenset[str] | set[str], urgent: bool
) -> Reach:
    counts: Counter[str] = Counter({frequency.value: 0 for frequency in Frequency})
    at_once = 0
    if areas:
        for subscriber in store.subscribers.iterate(areas=gazetteer.matching_areas(areas)):
            counts[subscriber.frequency.value] += 1
            if subscriber.frequency is Frequency.IMMEDIATE or (urgent and subscriber.urgent):
                at_once += 1
    return Reach(dict(counts), at_once)
