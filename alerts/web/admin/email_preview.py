"""The email a composed advisory becomes, rendered before it is stored: the same
planner, templates and renderer as the real alert, with example personal links (as
``alerts preview`` uses), so an editor sees exactly what residents will get."""

from __future__ import annotations

from datetime import datetime

from alerts.areas import Gazetteer
from alerts.config import DigestsConfig, MailSettings
from alerts.digest.plan import Entry, Planner
from alerts.digest.render import DigestRenderer
from alerts.types import (
    Advisory,
    AdvisoryInput,
    Candidate,
    DigestKind,
    Frequency,
    Priority,
    Subscriber,
    SubscriberStatus,
)

#: The id an unsaved advisory takes while it is rendered (stored ones start at 1).
UNSAVED = 0


def render_email(
    mail: MailSettings,
    digests: DigestsConfig,
    gazetteer: Gazetteer,
    item: AdvisoryInput,
    areas: frozenset[str],
    now: datetime,
) -> str:
    """The HTML part of the alert ``item`` would be sent as, links filled with examples."""
    advisory = Advisory(
        id=UNSAVED,
        key=item.key,
        url=item.url,
        title=item.title,
        summary=item.summary,
        body_html=item.body_html,
        body_text=item.body_text,
        published_at=item.published_at,
        first_seen_at=now,
        changed_at=now,
        updated_at=now,
        revision=1,
        source=item.source,
        areas=tuple(sorted(areas)),
        tags=tuple(sorted(areas)),
        force_area=item.force_area,
        image_url=item.image_url,
        status=item.status,
        priority=item.priority,
        expires_at=item.expires_at,
        extra=item.extra,
        decision=item.decision,
    )
    urgent = item.priority is Priority.URGENT
    candidate = Candidate(UNSAVED, 1, now, item.published_at, frozenset(areas), urgent)
    planner = Planner(gazetteer, [candidate], day=None)
    reader = Subscriber(
        id=0, email="subscriber@example.org", name=None, areas=tuple(sorted(areas)), frequency=Frequency.IMMEDIATE,
        status=SubscriberStatus.ACTIVE, forwardable=False, urgent=True, watermark=None, created_at=now,
    )  # fmt: skip
    [variant] = planner.variants(reader, [Entry(UNSAVED, 1, updated=False)], DigestKind.IMMEDIATE)
    rendered = DigestRenderer(mail, digests, gazetteer).render(variant, {UNSAVED: advisory})
    base = mail.site.base_url
    links = {
        "unsubscribe_url": f"{base}/unsubscribe?token=preview",
        "manage_url": f"{base}/manage?token=preview",
        "one_click_url": f"{base}/unsubscribe/one-click?token=preview",
    }
    html = rendered.html
    for name, marker in rendered.placeholders.items():
        html = html.replace(marker, links.get(name, base))
    return html
