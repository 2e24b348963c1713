"""The console's audit log (``store.audit``): every action, who did it, when, on
what, and the record before and after. Callers pass residents only as a subscriber id
or a masked address, so erasing someone leaves nothing of them here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from alerts.store.schema import audit


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any
    after: Any


class Audit:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        actor: str,
        action: str,
        at: datetime,
        *,
        target: str = "",
        before: Any = None,
        after: Any = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit).values(
                    at=at,
                    actor=actor[:64],
                    action=action[:40],
                    target=target[:200],
                    before=before,
                    after=after,
                )
            )

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        query = select(audit).order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [AuditEntry(**row._mapping) for row in conn.execute(query)]

    def purge(self, before: datetime) -> int:
        """Drop entries older than ``before`` (``retention.audit_days``)."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(audit).where(audit.c.at < before)).rowcount)
