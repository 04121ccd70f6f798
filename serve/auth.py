"""Who is calling: an API key sent as ``Authorization: Bearer KEY``, and how often they may call.

A knowledge base with accounts answers only requests with a valid key (``zhiku user token create``),
acting with its user's groups as stored now. One without accounts is a single-user installation:
``zhiku serve`` then binds loopback only, and a request without a key is the local user, as in the
CLI and the UI. Every failure looks the same to the caller (401, one message), so the answer never
tells whether a key exists, was revoked or expired.

Rate limits are a token bucket per key (per worker process): ``api_rate_per_s`` on average,
``api_rate_burst`` at once. Anonymous local requests are not limited (there is one user).
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from zhiku.accounts import has_users, key_hash, user_for_key
from zhiku.errors import ZhikuError
from zhiku.kb import KnowledgeBase
from zhiku.records import LOCAL_USER, User

Clock = Callable[[], float]

UNAUTHORIZED = "a valid API key is required: send `Authorization: Bearer KEY` (`zhiku user token create NAME`)"


class Unauthorized(ZhikuError):
    """No key, a malformed header, or a key that does not authenticate (deliberately not told apart)."""


class RateLimited(ZhikuError):
    """The key used up its bucket; ``retry_after_s`` says when the next request would be accepted."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limit exceeded: retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key: ``rate`` tokens per second refill up to ``burst``; a request takes one."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, max(1, burst), clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token of ``key``'s bucket, or raise ``RateLimited``."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / self.rate if self.rate > 0 else math.inf
                raise RateLimited(wait)
            bucket.tokens -= 1.0


def bearer_key(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


class Authenticator:
    """Turns a request's ``Authorization`` header into the ``User`` it acts as, rate-limited per key."""

    def __init__(self, kb: KnowledgeBase, limiter: RateLimiter, clock: Clock = time.time) -> None:
        self.kb, self.limiter, self.clock = kb, limiter, clock

    def user(self, authorization: str | None) -> User:
        key = bearer_key(authorization)
        if key is None:
            if has_users(self.kb):
                raise Unauthorized(UNAUTHORIZED)
            return LOCAL_USER
        user = user_for_key(self.kb, key, self.clock)
        if user is None:
            raise Unauthorized(UNAUTHORIZED)
        self.limiter.take(key_hash(key))
        return user
