"""The lifecycle table itself: complete, printed in the README as it is in code, and
keeping its own rules (the state-machine test checks the real store against it)."""

from __future__ import annotations

from alerts.subscribers.lifecycle import MAILABLE, TABLE, Event, Mail, State, markdown_table, step
from tests.support import REPO


def test_every_state_has_a_cell_for_every_event() -> None:
    assert set(TABLE) == set(State)
    for state, row in TABLE.items():
        assert set(row) == set(Event), state


def test_the_readme_prints_the_table_as_the_code_has_it() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme


def test_only_the_owners_confirmation_or_undo_makes_an_opted_out_address_active() -> None:
    for state in (State.UNSUBSCRIBED, State.SUPPRESSED, State.ERASED):
        for event in Event:
            if step(state, event).after is State.ACTIVE:
                assert event in (Event.CONFIRM, Event.UNDO), (state, event)
    # The undo link is mailed to the owner, and brings back only someone who left by one-click.
    assert step(State.SUPPRESSED, Event.UNDO).after is State.SUPPRESSED
    assert step(State.ERASED, Event.UNDO).after is State.ERASED


def test_an_address_that_left_gets_only_a_confirmation_it_asked_for_or_an_undo_link() -> None:
    for state in State:
        for event in Event:
            cell = TABLE[state][event]
            mail = (
                cell.mail if cell.after not in MAILABLE else Mail.NONE
            )  # a welcome goes to the active one
            assert mail in (Mail.NONE, Mail.CONFIRM, Mail.UNDO), (state, event)
            if mail is Mail.CONFIRM:
                assert event in (Event.SIGN_UP, Event.CLI_ADD), (state, event)
            if mail is Mail.UNDO:  # the coordinator, told at once that a one-click ended it
                assert (state, event) == (State.ACTIVE, Event.ONE_CLICK_FORWARDABLE)
    assert all(cell.mail is Mail.NONE for cell in TABLE[State.SUPPRESSED].values())


def test_whoever_asks_and_confirms_is_active_unless_suppressed() -> None:
    for state in set(State) - {State.SUPPRESSED}:
        asked = step(state, Event.SIGN_UP).after
        assert step(asked, Event.CONFIRM).after is State.ACTIVE, state


def test_a_record_that_goes_leaves_its_hash_where_one_was_kept() -> None:
    assert step(State.PENDING, Event.PURGE).after is State.ABSENT
    assert step(State.PENDING, Event.PURGE, hash_kept=True).after is State.ERASED
    assert step(State.ABSENT, Event.IMPORT, hash_kept=True).after is State.ERASED
