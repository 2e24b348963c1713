"""The subscriber lifecycle as a state machine: random sequences of the table's events
(alerts/subscribers/lifecycle.py), done as residents and the operator do them (the form,
the links in the mail they got, the CLI) against the real store on SQLite, with the
clock moving; every message is really delivered (the Maildir backend) and read back.

After every step each person's state is the one the table gives, each message that
arrived is the one the table names (or none where the form's mailbox limit held it; an
import's held-back mail arrives once the limit allows, once), and the invariants hold: whoever asked and confirmed is active with the choices they
confirmed; nothing reaches a suppressed or erased address but a confirmation its owner
just asked for; no link made for one person acts on another."""

from __future__ import annotations

import email
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from click.testing import Result
from hypothesis import HealthCheck, settings
from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.store.limits import MAILBOX
from alerts.subscribers.lifecycle import Event, Mail, State, step
from alerts.subscribers.mail import CONFIRM_MAX_AGE
from alerts.tokens import UNSUBSCRIBE, link_signer
from alerts.web import create_app

BASE = "https://alerts.example.org"
PEOPLE = ("ann", "bob", "cat")
AREAS = (("medway",), ("dover",), ("chatham", "dover"))
SUBJECTS = {
    "Confirm your": Mail.CONFIRM,
    "Welcome to": Mail.WELCOME,
    "You are already subscribed": Mail.ALREADY,
    "Manage your": Mail.MANAGE_LINK,
    "You were added to": Mail.ADDED,
    "alerts were stopped": Mail.UNDO,
}
LINK = re.compile(
    r"/(confirm|manage|unsubscribe/one-click|unsubscribe|undo)\?token=([A-Za-z0-9_.\-]+)"
)
#: Every step happens a little after the one before: the form's one-mail-per-10-minutes
#: gap never hides what a step did (the per-day allowance is modelled instead).
STEP = timedelta(minutes=11)
_examples = itertools.count()


@dataclass
class Link:
    person: str
    generation: int
    purpose: str
    token: str
    issued: datetime
    areas: tuple[str, ...] = ()


@dataclass
class Person:
    """What the model knows of one resident's address."""

    email: str
    state: State = State.ABSENT
    hash_kept: bool = False
    #: Bumped whenever a new record is made for the address: links of an older one must act on nobody.
    generation: int = 0
    created: datetime | None = None
    changed: datetime | None = None
    areas: tuple[str, ...] = ()
    confirm_link: Link | None = None
    #: The form's mailbox limit, as the store keeps it: (last use, window start, count).
    limit: tuple[datetime, datetime, int] | None = None
    links: list[Link] = field(default_factory=list)
    #: The newest undo link mailed (a one-click ended their forwardable subscription),
    #: and whether a confirmation was sent since they left (then the undo does nothing).
    undo_link: Link | None = None
    asked_since_left: bool = False
    #: An import's mail the mailbox limit held back: (when it may go, what, the record's
    #: generation, the areas it states). It arrives once, when due, unless they left.
    owed: list[tuple[datetime, Mail, int, tuple[str, ...]]] = field(default_factory=list)


def take_limit(person: Person, now: datetime) -> bool:
    """The mailbox limit's rule (alerts.store.limits.take), for the model."""
    if person.limit is None:
        person.limit = (now, now, 1)
        return True
    last, start, count = person.limit
    fresh = start <= now - MAILBOX.window
    if last > now - MAILBOX.gap or not (fresh or count < MAILBOX.per_window):
        return False
    person.limit = (now, now, 1) if fresh else (now, start, count + 1)
    return True


def reserve_limit(person: Person, now: datetime) -> datetime:
    """The first instant from ``now`` the mailbox limit allows, counted then
    (alerts.store.limits.reserve), for the model."""
    at = now
    if person.limit is not None:
        last, start, count = person.limit
        at = max(at, last + MAILBOX.gap)
        if count >= MAILBOX.per_window and start > at - MAILBOX.window:
            at = max(at, start + MAILBOX.window)
    assert take_limit(person, at)
    return at


def test_random_lives_of_three_residents_follow_the_lifecycle_table(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    config = write_config(site={"base_url": BASE})
    app = App(config)
    client = TestClient(create_app(app), base_url=BASE)
    maildir = tmp_path / "maildir"

    class Lives(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            n = next(_examples)
            self.people = {name: Person(f"{name}.{n}@example.org") for name in PEOPLE}
            self.seen: set[Path] = set(maildir.rglob("*")) if maildir.exists() else set()

        # -- what happens -------------------------------------------------------

        @rule(name=st.sampled_from(PEOPLE), areas=st.sampled_from(AREAS))
        def sign_up(self, name: str, areas: tuple[str, ...]) -> None:
            person = self.begin(name)
            response = client.post(
                "/subscribe",
                data={
                    "email": person.email,
                    "area": list(areas),
                    "frequency": "daily",
                    "urgent": "yes",
                },
            )
            assert response.status_code == 200, response.text
            self.expect(person, Event.SIGN_UP, areas=areas, form=True)

        @rule(name=st.sampled_from(PEOPLE))
        def confirm(self, name: str) -> None:
            person = self.begin(name)
            link = person.confirm_link
            if link is None or link.generation != person.generation:
                return  # no confirmation link of this record: nothing to press
            client.post("/confirm", data={"token": link.token})
            expired = clock.now() - link.issued > timedelta(seconds=CONFIRM_MAX_AGE)
            left_since = (
                person.state is State.UNSUBSCRIBED
                and person.changed is not None
                and person.changed >= link.issued
            )
            if expired or left_since or person.state not in (State.PENDING, State.UNSUBSCRIBED):
                self.expect_nothing()
                return
            self.expect(person, Event.CONFIRM, areas=link.areas)

        @rule(name=st.sampled_from(PEOPLE))
        def manage(self, name: str) -> None:
            person = self.begin(name)
            assert client.post("/manage", data={"email": person.email}).status_code == 200
            self.expect(person, Event.MANAGE, form=True)

        @rule(name=st.sampled_from(PEOPLE))
        def one_click(self, name: str) -> None:
            person = self.begin(name)
            found = app.store.subscribers.find_mailbox(person.email)
            if found is None:
                return  # no record: no mail carries a link
            # The List-Unsubscribe link a digest to this record carries.
            token = link_signer(app.config.site.base_url, app.config.security).token(
                found.id, UNSUBSCRIBE, clock.now(), found.link_key
            )
            client.post(f"/unsubscribe/one-click?token={token}", content=b"List-Unsubscribe=One-Click",
                        headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
            self.expect(
                person, Event.ONE_CLICK_FORWARDABLE if found.forwardable else Event.ONE_CLICK
            )

        @rule(name=st.sampled_from(PEOPLE), then_undo=st.booleans())
        def coordinator_one_clicked(self, name: str, then_undo: bool) -> None:
            """They choose the edition to forward on the manage page; later a one-click
            (a member's mail app, holding a forwarded copy) ends the subscription."""
            person = self.begin(name)
            found = app.store.subscribers.find_mailbox(person.email)
            if found is None:
                return
            signer = link_signer(app.config.site.base_url, app.config.security)
            if found.status.value in (State.PENDING, State.ACTIVE):
                manage = signer.token(found.id, "manage", clock.now(), found.link_key)
                saved = client.post("/manage", data={
                    "token": manage, "area": list(found.areas), "frequency": found.frequency.value,
                    "urgent": "yes" if found.urgent else "no", "edition": "forwardable",
                })  # fmt: skip
                assert saved.status_code == 200, saved.text
            token = signer.token(found.id, UNSUBSCRIBE, clock.now(), found.link_key)
            client.post(f"/unsubscribe/one-click?token={token}", content=b"List-Unsubscribe=One-Click",
                        headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
            self.expect(person, Event.ONE_CLICK_FORWARDABLE)
            if then_undo:  # the coordinator reads the undo mail and presses its button
                self.undo(name)

        @rule(name=st.sampled_from(PEOPLE))
        def undo(self, name: str) -> None:
            """The coordinator presses the newest undo link they were mailed."""
            person = self.begin(name)
            link = person.undo_link
            if link is None:
                return
            client.post("/undo", data={"token": link.token})
            works = (
                link.generation == person.generation
                and person.state is State.UNSUBSCRIBED
                and person.changed == link.issued
                and not person.asked_since_left
            )
            note("undo: " + ("restores" if works else "does nothing"))
            if not works:
                self.expect_nothing()
                return
            self.expect(person, Event.UNDO)

        @rule(name=st.sampled_from(PEOPLE), areas=st.sampled_from(AREAS))
        def cli_add(self, name: str, areas: tuple[str, ...]) -> None:
            person = self.begin(name)
            run_cli(
                "subscribers", "add", person.email, *[f"--area={a}" for a in areas], config=config
            )
            self.expect(person, Event.CLI_ADD, areas=areas)

        @rule(name=st.sampled_from(PEOPLE))
        def cli_remove(self, name: str) -> None:
            person = self.begin(name)
            run_cli("subscribers", "remove", person.email, config=config)
            self.expect(person, Event.CLI_REMOVE)

        @rule(name=st.sampled_from(PEOPLE), areas=st.sampled_from(AREAS))
        def import_list(self, name: str, areas: tuple[str, ...]) -> None:
            person = self.begin(name)
            listing = tmp_path / "list.csv"
            listing.write_text(
                f'email,areas\n{person.email},"{",".join(areas)}"\n', encoding="utf-8"
            )
            run_cli("subscribers", "import", str(listing), config=config)
            # A confirmation to a new address, within the form's mailbox limits.
            self.expect(person, Event.IMPORT, areas=areas, form=True, later=True)

        @rule(name=st.sampled_from(PEOPLE), areas=st.sampled_from(AREAS))
        def import_consented(self, name: str, areas: tuple[str, ...]) -> None:
            person = self.begin(name)
            listing = tmp_path / "list.csv"
            listing.write_text(
                f'email,areas\n{person.email},"{",".join(areas)}"\n', encoding="utf-8"
            )
            run_cli("subscribers", "import", str(listing), "--consented", "asked at a meeting",
                    config=config)  # fmt: skip
            self.expect(person, Event.IMPORT_CONSENTED, areas=areas, form=True, later=True)

        @rule(name=st.sampled_from(PEOPLE), event=st.sampled_from([Event.BOUNCE, Event.COMPLAINT]))
        def bounce_or_complaint(self, name: str, event: Event) -> None:
            person = self.begin(name)
            found = app.store.subscribers.find_mailbox(person.email)
            if found is not None:
                # What the last hard bounce or a complaint does.
                app.store.subscribers.suppress(found.id, now=clock.now())
            self.expect(person, event)

        @rule(name=st.sampled_from(PEOPLE))
        def erase(self, name: str) -> None:
            person = self.begin(name)
            run_cli("subscribers", "erase", person.email, "--yes", config=config)
            self.expect(person, Event.ERASE)

        @rule()
        def purge(self) -> None:
            now = clock.now()
            run_cli("purge", config=config)
            retention = app.config.retention
            for person in self.people.values():
                if person.state is State.PENDING:
                    due = person.created is not None and person.created <= now - timedelta(
                        days=retention.pending_days
                    )
                elif person.state in (State.UNSUBSCRIBED, State.SUPPRESSED):
                    due = person.changed is not None and person.changed <= now - timedelta(
                        days=retention.unsubscribed_days
                    )
                else:
                    due = True
                if due:
                    self.apply(
                        person, step(person.state, Event.PURGE, hash_kept=person.hash_kept).after
                    )
            self.expect_nothing()

        @rule(days=st.sampled_from([1, 3, 8, 30]))
        def time_passes(self, days: int) -> None:
            clock.advance(timedelta(days=days))

        @rule(data=st.data())
        def an_old_link_is_pressed(self, data: st.DataObject) -> None:
            """Any link anyone was ever sent, pressed again later: it acts on its own
            record or on nobody."""
            links = [link for person in self.people.values() for link in person.links]
            if not links:
                return
            link = data.draw(st.sampled_from(links))
            owner = self.people[link.person]
            clock.advance(STEP)
            before = {name: self.real_state(person) for name, person in self.people.items()}
            if link.purpose == "confirm":
                client.post("/confirm", data={"token": link.token})
            elif link.purpose == "undo":
                client.post("/undo", data={"token": link.token})
            elif link.purpose == "manage":
                page = client.get(f"/manage?token={link.token}")
                shown = re.findall(r"(\w)…@example\.org", page.text)
                assert set(shown) <= {link.person[0]}, (link, shown)
            else:
                client.post(f"/unsubscribe/one-click?token={link.token}", content=b"List-Unsubscribe=One-Click",
                            headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
            after = {name: self.real_state(person) for name, person in self.people.items()}
            for name in self.people:
                if name != link.person or link.generation != owner.generation:
                    assert after[name] == before[name], (link, name, before[name], after[name])
            if after[link.person] != before[link.person]:
                allowed = {
                    "confirm": State.ACTIVE,
                    "undo": State.ACTIVE,
                    "unsubscribe": State.UNSUBSCRIBED,
                    "unsubscribe/one-click": State.UNSUBSCRIBED,
                }
                assert after[link.person] == allowed.get(link.purpose), (link, before, after)
                assert not (owner.changed and link.purpose == "confirm" and link.issued <= owner.changed
                            and before[link.person] is State.UNSUBSCRIBED)  # fmt: skip
                self.apply(owner, after[link.person])
                if after[link.person] is State.ACTIVE:
                    owner.areas = link.areas
            self.deliver()  # a welcome may follow a confirmation; nothing else

        # -- the model ----------------------------------------------------------

        def begin(self, name: str) -> Person:
            clock.advance(STEP)
            return self.people[name]

        def apply(self, person: Person, after: State) -> None:
            now = clock.now()
            if after is not person.state:
                if person.state in (State.ABSENT, State.ERASED) and after in (
                    State.PENDING,
                    State.ACTIVE,
                ):
                    person.generation += 1
                    person.created = now
                person.changed = now
            if after is State.ERASED or (
                person.state is not State.ABSENT and after is State.ABSENT
            ):
                person.created = None
            if after is State.ERASED:
                person.hash_kept = True
            person.state = after

        def expect(
            self,
            person: Person,
            event: Event,
            *,
            areas: tuple[str, ...] = (),
            form: bool = False,
            later: bool = False,
        ) -> None:
            """The table's cell for ``event``: the state after, and its mail (the form's
            mail only within the mailbox limit; with ``later``, an import's, what the
            limit holds back is owed until it allows)."""
            before = person.state
            cell = step(before, event, hash_kept=person.hash_kept)
            if event is Event.ERASE and before is State.SUPPRESSED:
                person.hash_kept = True
            mail = cell.mail
            owed = None
            if mail is not Mail.NONE and form and later:
                at = reserve_limit(person, clock.now())
                if at > clock.now():
                    note("an import's mail held back by the mailbox limit")
                    owed, mail = (at, mail), Mail.NONE
            elif mail is not Mail.NONE and form and not take_limit(person, clock.now()):
                mail = Mail.NONE
            self.apply(person, cell.after)
            if owed is not None:
                person.owed.append((owed[0], owed[1], person.generation, areas))
            takes_choices = (
                event is Event.CONFIRM
                or (
                    event is Event.CLI_ADD
                    and cell.after in (State.PENDING, State.ACTIVE)
                    and mail is Mail.NONE
                )
                or (
                    event is Event.IMPORT_CONSENTED
                    and before is State.ABSENT
                    and cell.after is State.ACTIVE
                )
            )
            if takes_choices:
                person.areas = areas
            got = self.deliver()
            expected = [(person.email, mail)] if mail is not Mail.NONE else []
            assert [(to, kind) for to, kind, _ in got] == expected, (event, before, got)
            if mail is Mail.CONFIRM:
                [(_, _, message)] = got
                person.confirm_link = self.links_in(person, message, areas or person.areas)[0]
                person.asked_since_left = person.state is State.UNSUBSCRIBED

        def expect_nothing(self) -> None:
            got = self.deliver()
            for _to, kind, _ in got:
                assert kind is Mail.WELCOME, got

        def deliver(self) -> list[tuple[str, Mail, EmailMessage]]:
            """Send what is queued (the Maildir backend) and read what arrived; an
            import's mail owed since the limit held it back is checked and left out."""
            send_pending(app.config.delivery, app.config.mail, app.store, clock)
            arrived = self.arrivals()
            now = clock.now()
            for person in self.people.values():
                for at, mail, generation, areas in [o for o in person.owed if o[0] <= now]:
                    person.owed.remove((at, mail, generation, areas))
                    came = [a for a in arrived if a[0] == person.email and a[1] is mail]
                    # It goes unless they left since it was queued (or the record is gone).
                    mailable = generation == person.generation and person.state in (
                        State.PENDING,
                        State.ACTIVE,
                    )
                    assert len(came) == (1 if mailable else 0), (person, mail, arrived)
                    if came:
                        arrived.remove(came[0])
                        if mail is Mail.CONFIRM:
                            links = self.links_in(person, came[0][2], areas)
                            person.confirm_link = links[0]
            return arrived

        def arrivals(self) -> list[tuple[str, Mail, EmailMessage]]:
            arrived = []
            for path in sorted(set(maildir.rglob("*")) - self.seen):
                self.seen.add(path)
                if not path.is_file():
                    continue
                message = email.message_from_bytes(path.read_bytes(), policy=default)
                assert isinstance(message, EmailMessage)
                to = message["To"].addresses[0].addr_spec
                kind = next(
                    mail for words, mail in SUBJECTS.items() if words in str(message["Subject"])
                )
                owner = next(p for p in self.people.values() if p.email == to)
                # Nothing reaches an address that left unless it is what its owner just asked for.
                assert owner.state is not State.SUPPRESSED, (to, kind)
                if kind is not Mail.CONFIRM:
                    found = self.links_in(owner, message, owner.areas)
                if kind is Mail.UNDO:
                    owner.undo_link = next(link for link in found if link.purpose == "undo")
                    owner.asked_since_left = False
                arrived.append((to, kind, message))
            return arrived

        def links_in(
            self, person: Person, message: EmailMessage, areas: tuple[str, ...]
        ) -> list[Link]:
            body = message.get_body(("plain",))
            assert body is not None
            found = [
                Link(
                    person.email.split(".")[0],
                    person.generation,
                    purpose,
                    token,
                    clock.now(),
                    tuple(areas),
                )
                for purpose, token in LINK.findall(
                    body.get_content() + str(message.get("List-Unsubscribe", ""))
                )
            ]
            person.links.extend(found)
            return [link for link in found if link.purpose == "confirm"] or found

        def real_state(self, person: Person) -> State:
            found = app.store.subscribers.find_mailbox(person.email)
            if found is not None:
                return State(found.status.value)
            hashed = app.store.retention.hashed_opt_out(app.config.security, person.email)
            if hashed is None:
                return State.ABSENT
            return State.SUPPRESSED if hashed == "suppressed" else State.ERASED

        # -- what always holds ----------------------------------------------------

        @invariant()
        def each_person_is_where_the_table_says(self) -> None:
            for person in self.people.values():
                assert self.real_state(person) is person.state, (person.email, person.state)
                if person.state is State.ACTIVE and person.areas:
                    found = app.store.subscribers.find_mailbox(person.email)
                    assert found is not None and set(found.areas) == set(person.areas), (
                        person.email,
                        found,
                    )

    try:
        run_state_machine_as_test(
            Lives,
            settings=settings(
                max_examples=int(os.environ.get("ALERTS_LIFECYCLE_EXAMPLES", "15")),
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )
    finally:
        app.close()
