"""Typed errors raised by the pipeline stages.

Stages raise these; only the front doors (``alerts.cli``, ``alerts.web``) turn them
into a one-line message with the next step and an exit status.
"""

from __future__ import annotations


class AlertsError(Exception):
    """Base of every error a user can cause and fix.

    ``where`` names the file, key or address at fault; ``hint`` says what to do.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(AlertsError):
    """config.yaml is missing, unreadable or invalid."""


class UnknownArea(AlertsError):
    """A name, slug or postcode district that the gazetteer does not know.

    As data for the front doors (never read back from the hint's words): ``asked``, the
    text as given; ``suggestions``, slugs of known areas spelt like it ("did you mean");
    ``homonyms``, slugs of the several places it names (one must be chosen)."""

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        asked: str = "",
        suggestions: tuple[str, ...] = (),
        homonyms: tuple[str, ...] = (),
    ):
        super().__init__(message, where=where, hint=hint)
        self.asked = asked
        self.suggestions = suggestions
        self.homonyms = homonyms


class GazetteerError(AlertsError):
    """The gazetteer data file is invalid."""


class AdvisoryError(AlertsError):
    """One advisory could not be read; it is skipped and reported."""

    def __init__(
        self,
        message: str,
        *,
        where: str,
        line: int | None = None,
        hint: str | None = None,
    ):
        location = f"{where}:{line}" if line else where
        super().__init__(message, where=location, hint=hint)
        self.path = where
        self.line = line


class SourceError(AlertsError):
    """A configured source (an upstream feed) could not be fetched or read; the others go
    on and it is tried again at the next poll. ``where`` is its URL."""


class Conflict(AlertsError):
    """What was asked conflicts with what exists (a name already taken, the last admin):
    the command was used wrongly, so it exits 2 like bad usage, and nothing changed."""


class NotFound(AlertsError):
    """A record asked for by id or key does not exist."""


class BadToken(AlertsError):
    """A signed link token that is malformed, tampered with, for another purpose, or
    (``expired`` True) older than it may be."""

    def __init__(self, message: str, *, expired: bool = False, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.expired = expired


class MailboxError(AlertsError):
    """The bounce mailbox cannot be read: its server is down or too slow, refuses the
    login, shows a certificate that is not trusted, or lacks the folder. Nothing read so
    far is lost (each message is marked once handled); it is read again at the next run,
    and ``alerts serve``'s other jobs go on. ``where`` is the server (host:port)."""
