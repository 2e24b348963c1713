"""``alerts bounces``: read the bounces and complaints that came back by mail, and count
them as the ones during the SMTP conversation are counted.

The return path's mail is delivered to a Maildir (``delivery.bounces.maildir``). Each new
message there is read once (then moved to ``cur/``, marked seen; nothing is deleted):

- a delivery status notification (RFC 3464) counts, per recipient, only with ``Action:
  failed`` and a 5.x.x status, and only when it was sent to a return path whose
  signature verifies (a forged bounce suppresses nobody) naming a message sent to that
  recipient: the message becomes ``bounced`` and the subscriber's bounces go up by one
  (``delivery.max_bounces`` of them suppress the address);
- a feedback-loop complaint (ARF, RFC 5965) is matched by the Message-ID of the message
  complained about (recipients are often redacted) and suppresses the subscriber at once;
- anything else (delays, auto-replies, mail of other kinds) is left alone.
"""

from __future__ import annotations

import logging
import mailbox
from dataclasses import asdict, dataclass, field
from typing import Any

from alerts.clock import Clock
from alerts.config import DeliveryConfig
from alerts.delivery.policy import TABLE, Event, State
from alerts.delivery.reports import Bounce, Complaint, Ignored, read_report
from alerts.delivery.returns import ReturnPaths
from alerts.errors import ConfigError
from alerts.store import Store

log = logging.getLogger(__name__)


@dataclass
class BounceReport:
    """What one reading of the bounce mailbox did."""

    read: int = 0
    bounces: int = 0
    complaints: int = 0
    suppressed: int = 0
    #: Reports whose return path did not verify (forged, or not ours): not acted on.
    unverified: int = 0
    ignored: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_bounces(
    delivery: DeliveryConfig, store: Store, clock: Clock, paths: ReturnPaths | None
) -> BounceReport:
    """Read the new mail in ``delivery.bounces.maildir`` and act on it."""
    folder = delivery.bounces.maildir
    if folder is None:
        raise ConfigError(
            "no bounce mailbox is configured",
            where="delivery.bounces.maildir",
            hint="give the Maildir folder that mail to the return path is delivered to",
        )
    if not (folder / "new").is_dir():
        raise ConfigError(
            f"{folder} is not a Maildir folder (it has no new/)",
            where="delivery.bounces.maildir",
            hint="give the Maildir folder that mail to the return path is delivered to",
        )
    box = mailbox.Maildir(folder, factory=None, create=False)
    report = BounceReport()
    for key in list(box.iterkeys()):
        message = box[key]
        if message.get_subdir() != "new":
            continue
        report.read += 1
        _act(read_report(message.as_bytes()), delivery, store, clock, paths, report)
        message.set_subdir("cur")
        message.add_flag("S")
        box[key] = message
    return report


def _act(
    found: tuple[Bounce, ...] | Complaint | Ignored,
    delivery: DeliveryConfig,
    store: Store,
    clock: Clock,
    paths: ReturnPaths | None,
    report: BounceReport,
) -> None:
    if isinstance(found, Ignored):
        report.ignored += 1
        return
    if isinstance(found, Complaint):
        _complaint(found, delivery, store, clock, report)
        return
    for bounce in found:
        returned = (
            next((r for r in (paths.verify(a) for a in bounce.return_paths) if r), None)
            if paths
            else None
        )
        if returned is None:
            report.unverified += 1
            report.notes.append(
                f"a bounce for {bounce.recipient} to no verified return path: ignored"
            )
            continue
        step = TABLE[(State.SENT, Event.LATER_BOUNCE)]
        why = f"{bounce.status} {bounce.diagnostic}"
        if not store.returns.mark_bounced_later(
            returned.outbox_id, returned.subscriber_id, bounce.recipient, why
        ):
            report.notes.append(
                f"a bounce for outbox {returned.outbox_id} counted already, or not its recipient"
            )
            continue
        report.bounces += 1
        if step.bounce and store.subscribers.record_bounce(
            returned.subscriber_id, delivery.max_bounces, now=clock.now()
        ):
            report.suppressed += 1
            _suppress_queued(delivery, store, returned.subscriber_id)


def _complaint(
    found: Complaint, delivery: DeliveryConfig, store: Store, clock: Clock, report: BounceReport
) -> None:
    if found.message_id is None:
        report.ignored += 1
        report.notes.append("a complaint without the Message-ID of the message: ignored")
        return
    message = store.returns.message_by_id(found.message_id)
    if message is None:
        report.ignored += 1
        report.notes.append(
            f"a complaint about <{found.message_id}>, which is not ours (or purged): ignored"
        )
        return
    report.complaints += 1
    if TABLE[(State.SENT, Event.COMPLAINT)].suppress and store.subscribers.suppress(
        message[1], now=clock.now()
    ):
        report.suppressed += 1
        _suppress_queued(delivery, store, message[1])


def _suppress_queued(delivery: DeliveryConfig, store: Store, subscriber_id: int) -> None:
    store.outbox.suppress_queued(subscriber_id)
