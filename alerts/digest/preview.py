"""Preview: what a subscriber to some areas would get now, built exactly as a real
message is, without writing anything (no digest, no outbox row, no watermark moved)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from alerts.areas import Gazetteer
from alerts.config import DigestsConfig, MailSettings
from alerts.digest.plan import Planner, areas_key
from alerts.digest.render import DigestRenderer
from alerts.message import PreparedDigest, new_message_id
from alerts.store.store import Store
from alerts.tokens import PersonalLinks
from alerts.types import (
    DigestKind,
    Frequency,
    OutboxItem,
    RenderedDigest,
    Subscriber,
    SubscriberStatus,
)

#: How far back each frequency looks for "new" in a preview.
PERIOD = {
    Frequency.IMMEDIATE: timedelta(days=1),
    Frequency.DAILY: timedelta(days=1),
    Frequency.WEEKLY: timedelta(days=7),
}
PREVIEW_ADDRESS = "subscriber@example.org"


@dataclass(frozen=True)
class Preview:
    """A message as a subscriber would get it. ``latest``: nothing was new in the
    period, so the latest advisories are shown instead. ``rendered`` is None when there
    is nothing at all to show."""

    rendered: RenderedDigest | None
    html: str
    text: str
    message: bytes
    latest: bool
    count: int


def preview_digest(
    mail: MailSettings,
    digests: DigestsConfig,
    store: Store,
    gazetteer: Gazetteer,
    areas: tuple[str, ...],
    frequency: Frequency,
    *,
    now: datetime,
    forwardable: bool = False,
) -> Preview:
    """Render what a subscriber to ``areas`` with ``frequency`` would get at ``now``
    (for immediate: the newest alert). The personal links are harmless examples."""
    frequency = Frequency(frequency)
    renderer = DigestRenderer(mail, digests, gazetteer)
    kind = DigestKind(frequency.value)
    since = now - PERIOD[frequency]
    subscriber = Subscriber(
        id=0,
        email=PREVIEW_ADDRESS,
        name="A Subscriber",
        areas=areas_key(areas),
        frequency=frequency,
        status=SubscriberStatus.ACTIVE,
        forwardable=forwardable,
        urgent=True,
        watermark=since,
        created_at=since,
    )
    max_age = timedelta(days=digests.max_age_days)
    local = now.astimezone(mail.tz)
    candidates = store.advisories.candidates(after=since, until=now, max_age=max_age)
    planner = Planner(gazetteer, candidates, day=local.date())
    entries = planner.entries(subscriber, {})
    latest = not entries
    if latest:
        # Nothing new: show the latest there is, so the layout can still be checked.
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        planner = Planner(
            gazetteer,
            store.advisories.candidates(after=epoch, until=now, max_age=timedelta(days=36500)),
            day=local.date(),
        )
        entries = planner.entries(replace(subscriber, watermark=epoch), {})
        entries = entries[: digests.max_items]
    variants = planner.variants(subscriber, entries, kind)
    if not variants:
        return Preview(None, "", "", b"", latest, 0)
    variant = variants[0]
    advisories = store.advisories.load(variant.advisory_ids)
    rendered = renderer.render(variant, advisories)
    base = mail.site.base_url
    links = PersonalLinks(
        unsubscribe_url=f"{base}/unsubscribe?token=preview",
        manage_url=f"{base}/manage?token=preview",
        one_click_url=f"{base}/unsubscribe/one-click?token=preview",
    )
    html, text = rendered.html, rendered.text
    for name, marker in rendered.placeholders.items():
        html = html.replace(marker, getattr(links, name))
        text = text.replace(marker, getattr(links, name))
    item = OutboxItem(0, 0, 0, new_message_id(mail.email.domain), PREVIEW_ADDRESS, "A Subscriber")
    message = PreparedDigest.from_rendered(rendered, mail).compose(item, links, local)
    return Preview(rendered, html, text, message, latest, len(variant.entries))
