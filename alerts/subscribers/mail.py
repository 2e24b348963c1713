"""Transactional mail: the email that asks a new subscriber to confirm.

It is built here with the stdlib email package (every header value passes through
``one_line``, so no newline from input reaches a header) and queued like any other
message: one ``digests`` row of kind ``confirm`` holding the finished subject, text and
HTML (and, in ``meta["raw"]``, the complete RFC 5322 message), plus one ``outbox`` row,
so delivery sends it with the same retries and bounce handling as a digest.
(Digests are composed at send time by :mod:`alerts.message` instead; its docstring says
why there are two ways.)
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, TemplateError

from alerts.config import MailSettings
from alerts.digest.render import RESPONSIVE_STYLESHEET, STYLESHEET, inline_css
from alerts.errors import ConfigError
from alerts.store.store import Store
from alerts.templating import find_template, template_environment
from alerts.text import and_list, one_line
from alerts.tokens import Confirmation, link_signer
from alerts.types import Subscriber

CONFIRM = "confirm"
#: The digest kind of a confirmation email (the same word as the link purpose).
CONFIRMATION = CONFIRM
#: How long a confirmation link works.
CONFIRM_MAX_AGE = 7 * 24 * 3600
#: A second sign-up for the same address within this time sends no second email, so
#: nobody can use the form to flood someone else's inbox.
RESEND_AFTER = timedelta(minutes=10)
CONFIRM_TEMPLATES = ("confirm.txt", "confirm.html", "_layout.html")


@functools.lru_cache(maxsize=4)
def _environment(folders: tuple[Path, ...]) -> Environment:
    return template_environment(folders, filters={"and_list": and_list})


@functools.lru_cache(maxsize=8)
def _stylesheet(path: Path) -> str:
    """A stylesheet's text, read once per process (every email inlines it)."""
    return path.read_text(encoding="utf-8")


def render_html_email(mail: MailSettings, name: str, subject: str, context: dict[str, Any]) -> str:
    """``email/<name>`` (which extends ``_layout.html``, the layout every email shares with
    the digests) with the layout's context, its stylesheet inlined as the digests' is."""
    folders = mail.template_folders("email")
    site = mail.site
    css, responsive = (
        find_template(folders, sheet) for sheet in (STYLESHEET, RESPONSIVE_STYLESHEET)
    )
    if css is None or responsive is None:
        raise ConfigError(
            f"missing email stylesheet {STYLESHEET} or {RESPONSIVE_STYLESHEET}",
            where=str(folders[0]),
            hint="an operator's email/ folder may override them; the package ships both",
        )
    layout = {
        "lang": site.language,
        "subject": subject,
        "heading": subject,
        "preheader": "",
        "site_name": site.name,
        "publisher": site.publisher,
        "privacy_url": f"{site.base_url}/privacy",
        "css": _stylesheet(css),
        "responsive_css": _stylesheet(responsive),
    }
    return inline_css(_environment(folders).get_template(name).render({**layout, **context}))


def check_confirmation_templates(mail: MailSettings) -> None:
    """Raise :class:`ConfigError` naming the file when a confirmation template is missing
    or broken, so the web app fails at start-up rather than on the first sign-up."""
    folders = mail.template_folders("email")
    env = _environment(folders)
    for name in CONFIRM_TEMPLATES:
        try:
            env.get_template(name)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            found = find_template(folders, name)
            raise ConfigError(
                f"missing email template {name}"
                if found is None
                else f"broken email template {name}: {exc}",
                where=str(folders[0])
                if found is None
                else f"{found}{':' + str(line) if line else ''}",
                hint="set 'templates:' in config.yaml to a folder holding email/"
                + ", email/".join(CONFIRM_TEMPLATES),
            ) from None


def build_transactional_message(
    mail: MailSettings,
    subscriber: Subscriber,
    subject: str,
    text: str,
    html: str,
    *,
    now: datetime,
    message_id: str,
) -> EmailMessage:
    """A complete multipart/alternative message (text, then HTML) to one subscriber."""
    message = EmailMessage(policy=SMTP)
    message["From"] = one_line(mail.email.from_address)
    message["To"] = formataddr((one_line(subscriber.name or ""), subscriber.email))
    if mail.email.reply_to:
        message["Reply-To"] = one_line(mail.email.reply_to)
    message["Date"] = format_datetime(now.astimezone(mail.tz))
    message["Message-ID"] = message_id
    message["Subject"] = one_line(subject, 200)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def confirmation_content(
    mail: MailSettings, subscriber: Subscriber, confirm_url: str, area_names: list[str]
) -> tuple[str, str, str]:
    """Subject, plain text and HTML of the confirmation email."""
    env = _environment(mail.template_folders("email"))
    context: dict[str, Any] = {
        "site": mail.site,
        "subscriber": subscriber,
        "confirm_url": confirm_url,
        "areas": area_names,
        "days": CONFIRM_MAX_AGE // 86400,
    }
    subject = f"Confirm your {mail.site.name} subscription"
    text = env.get_template("confirm.txt").render(context)
    html = render_html_email(mail, "confirm.html", subject, context)
    return subject, text, html


def send_confirmation(
    mail: MailSettings,
    store: Store,
    subscriber: Subscriber,
    area_names: list[str],
    *,
    now: datetime,
    not_before: datetime | None = None,
) -> int | None:
    """Queue the confirmation email for a pending subscriber (to go at ``not_before``
    when the forms' hourly ceiling is reached). Returns the outbox id, or None when one
    was queued for them less than :data:`RESEND_AFTER` ago."""
    if store.digests.queued_since(subscriber.id, CONFIRM, now - RESEND_AFTER):
        return None
    # The preferences the email states travel in its link: what is confirmed is what was mailed.
    confirm_url = link_signer(mail.site.base_url, mail.security).confirm_url(
        Confirmation(
            subscriber.id,
            subscriber.areas,
            subscriber.frequency,
            subscriber.urgent,
            key=subscriber.link_key,
            forwardable=subscriber.forwardable,
        ),
        now,
    )
    subject, text, html = confirmation_content(mail, subscriber, confirm_url, area_names)
    message_id = make_msgid(idstring=CONFIRM, domain=mail.email.domain)
    message = build_transactional_message(
        mail, subscriber, subject, text, html, now=now, message_id=message_id
    )
    return queue_transactional(
        store,
        subscriber.id,
        message["Subject"],
        text,
        html,
        now,
        message_id=message_id,
        raw=message.as_string(),
        not_before=not_before,
    )


def queue_transactional(
    store: Store,
    subscriber_id: int,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    *,
    message_id: str,
    raw: str | None = None,
    kind: str = CONFIRM,
    not_before: datetime | None = None,
) -> int:
    """Queue one finished message for one subscriber: a ``digests`` row of ``kind``
    (``meta["transactional"]`` true, ``meta["raw"]`` the whole message when given) and a
    pending ``outbox`` row ahead of any digest (the store wakes the senders). Returns the
    outbox id."""
    return store.digests.queue_finished_message(
        subscriber_id,
        kind=kind,
        subject=one_line(subject, 200),
        text=text,
        html=html,
        message_id=message_id,
        meta={"transactional": True, **({"raw": raw} if raw is not None else {})},
        now=now,
        not_before=not_before,
    )


def email_templates(mail: MailSettings) -> Environment:
    """The Jinja2 environment for ``email/`` templates (the operator's, then the packaged ones; (autoescape for .html only)."""
    return _environment(mail.template_folders("email"))
