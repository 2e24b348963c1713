"""Password hashing for console accounts: Argon2id, in a small bounded thread pool.

Parameters, chosen for the two-core machine this runs on (RFC 9106's second
recommendation scaled down to OWASP's minimum for Argon2id): ``time_cost=2``,
``memory_cost=19 MiB``, ``parallelism=1``. One hash took 0.12 s on the loaded two-core
development machine (``benchmarks/password_hash.py`` prints it); with the pool's two
workers that is at most ~16 sign-in attempts a second, and memory at most 2 x 19 MiB.
At most :data:`MAX_WAITING` hashes wait for the pool; beyond that a sign-in is refused
as busy rather than queued, so a flood of attempts cannot pile up memory or latency.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TIME_COST = 2
MEMORY_KIB = 19 * 1024
PARALLELISM = 1
WORKERS = 2
MAX_WAITING = 16
MIN_LENGTH = 12
MAX_LENGTH = 1024

HASHER = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)
_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="argon2")
_WAITING = threading.BoundedSemaphore(MAX_WAITING)


class Busy(Exception):
    """Too many hashes already wait for the pool."""


class WeakPassword(ValueError):
    """A password too short or too long to accept."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"a password has at least {MIN_LENGTH} characters (a few words make a good one)"
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")


def problem(password: str, again: str) -> str | None:
    """What is wrong with a new password typed twice in a form, or None."""
    if password != again:
        return "The two new passwords differ. Type the same one twice."
    try:
        check_strength(password)
    except WeakPassword as exc:
        return f"Choose another password: {exc}."
    return None


def hash_password(password: str) -> str:
    return HASHER.hash(password)


@functools.cache
def dummy_hash() -> str:
    """A hash of nothing anyone can type, verified for unknown names so that an answer
    takes as long whether or not the account exists."""
    return HASHER.hash("\x00 no such account \x00")


def verify(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). ``password_hash`` None: verify against the dummy hash
    (same cost) and answer no."""
    try:
        ok = HASHER.verify(password_hash or dummy_hash(), password[:MAX_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    if password_hash is None:
        return False, False
    return ok, HASHER.check_needs_rehash(password_hash)


async def verify_in_pool(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """:func:`verify` on the pool, off the event loop; raises :class:`Busy` when too
    many already wait."""
    if not _WAITING.acquire(blocking=False):
        raise Busy
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _POOL, verify, password_hash, password
        )
    finally:
        _WAITING.release()


async def hash_in_pool(password: str) -> str:
    if not _WAITING.acquire(blocking=False):
        raise Busy
    try:
        return await asyncio.get_running_loop().run_in_executor(_POOL, hash_password, password)
    finally:
        _WAITING.release()
