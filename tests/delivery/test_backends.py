"""The backends on their own: the Maildir (the embedded default) and the SMTP rate limit."""

from __future__ import annotations

import mailbox
from pathlib import Path

from alerts.delivery.maildir import MaildirSender
from alerts.delivery.smtp import RateLimiter
from alerts.testing import bare_message_id
from tests.support.delivery import queue, send, statuses
from tests.support.sections import Stages


def test_the_maildir_gets_one_complete_file_per_message_from_several_workers(
    make_mailer, sqlite_url: str, tmp_path: Path
) -> None:
    app: Stages = make_mailer(database=sqlite_url, maildir=str(tmp_path / "mail"))
    ids = queue(app, 60)

    report = send(app, workers=3)

    assert report.sent == 60
    box = mailbox.Maildir(tmp_path / "mail", create=False)
    assert sorted(bare_message_id(m["Message-ID"]) for m in box) == sorted(ids)
    assert list((tmp_path / "mail" / "tmp").iterdir()) == []
    assert statuses(app) == {"sent": 60}


def test_a_maildir_that_cannot_be_written_leaves_the_messages_pending(
    make_mailer, sqlite_url: str, tmp_path: Path
) -> None:
    app: Stages = make_mailer(database=sqlite_url, maildir=str(tmp_path / "mail"))
    queue(app, 2)
    sender = MaildirSender(tmp_path / "mail")
    (tmp_path / "mail" / "tmp").rmdir()  # what a full or vanished disk looks like to us

    report = send(app, workers=1)

    assert (report.sent, report.deferred) == (0, 2)
    assert statuses(app) == {"pending": 2}
    assert sender.label.endswith("mail")


def test_the_rate_limit_spaces_messages_evenly_across_workers() -> None:
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))
        now[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)

    for _ in range(5):
        limiter.wait()

    assert waits == [0.25, 0.25, 0.25, 0.25]  # the first goes at once, then one per 1/4 s
    now[0] += 10  # idle: no burst is saved up
    limiter.wait()
    limiter.wait()
    assert waits[-1] == 0.25
