"""Who is sending: names for sending processes and their workers, the advisory lock a
sender holds on PostgreSQL while it runs, and whether a holder on this machine is dead
(SQLite). :meth:`alerts.store.outbox.Outbox.reclaim_orphans` frees a dead sender's rows
by these."""

from __future__ import annotations

import hashlib
import os
import random
import socket

#: First key of the senders' advisory locks (the two-key form, so that it can never be the
#: scheduler's one-key lock in alerts.locking).
SENDER_LOCKS = 0x61_6C_72_74


def sender_name() -> str:
    """A new name for one run of a sending process: host, pid and a nonce (pids are
    reused, and one process may run several senders at once)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{random.getrandbits(32):08x}"


def worker_name(sender: str, index: int) -> str:
    """``host:pid:nonce:index``: unique per worker, and says which sender holds a row."""
    return f"{sender}:{index}"


def holder_sender(holder: str) -> str | None:
    """The ``host:pid:nonce`` part of a worker name (None for a name of another form)."""
    parts = holder.split(":")
    return ":".join(parts[:3]) if len(parts) == 4 and parts[1].isdigit() else None


def sender_lock_key(sender: str) -> int:
    """The second key of a sender's advisory lock (a signed 32-bit int)."""
    return int.from_bytes(
        hashlib.blake2b(sender.encode(), digest_size=4).digest(), "big", signed=True
    )


def dead_here(holder: str, host: str) -> bool:
    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
