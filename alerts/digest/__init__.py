"""Digests: who gets which advisories, rendered once per variant, queued in the outbox.

``plan`` decides what is new for each subscriber (watermarks, the matching rule, what
was already sent); ``render`` turns a variant into HTML and text (Jinja2, premailer);
``queue`` runs it all for one frequency and writes the outbox; ``preview`` shows what a
subscriber would get without writing anything. :mod:`alerts.message` builds the
personalised message for each outbox row.
"""

from alerts.digest.plan import Entry, Variant
from alerts.digest.preview import Preview, preview_digest
from alerts.digest.queue import PlannedMessage, QueueReport, queue_digests
from alerts.digest.render import DigestRenderer, EmailTemplateError
from alerts.types import DigestKind, RenderedDigest

__all__ = [
    "DigestKind",
    "DigestRenderer",
    "EmailTemplateError",
    "Entry",
    "PlannedMessage",
    "Preview",
    "QueueReport",
    "RenderedDigest",
    "Variant",
    "preview_digest",
    "queue_digests",
]
