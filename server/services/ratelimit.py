"""Token buckets per client key, in memory: how many requests a client may send and when.

Each key (a client id or a source address) has a bucket of ``burst`` tokens that refills at
``per_minute / 60`` tokens a second; a request takes one token or waits for it.  The table
lives in one process, so a server of N workers admits up to N times the limit (see
docs/security-hardening.md).  Framework-free: ``http/limits.py`` applies it to requests.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_MAX_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Admits or refuses requests per key; thread-safe; at most ``max_keys`` buckets held.

    Buckets are kept in least-recently-used order.  One untouched for ``burst / rate`` seconds
    is full again, the same as a new one, so dropping it loses nothing; that is how idle keys
    leave.  Should more than ``max_keys`` keys be busy at once (an attacker rotating source
    addresses), the least recently used bucket goes even if not yet full: its key starts
    afresh with one burst, which any new address gets anyway, and memory stays bounded.
    """

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1 or burst < 1 or max_keys < 1:
            raise ValueError("per_minute, burst and max_keys must be at least 1")
        self.rate = per_minute / 60.0  # tokens a second
        self.burst = burst
        self.max_keys = max_keys
        self._refill_time = burst / self.rate
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when admitted, else the seconds until one is there."""
        with self._lock:
            now = self._clock()
            self._evict_idle(now)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                elapsed = max(0.0, now - bucket.updated)  # a clock never runs back, but be safe
                bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
                bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        """The number of buckets held (for tests and metrics)."""
        with self._lock:
            return len(self._buckets)

    def _evict_idle(self, now: float) -> None:
        # The oldest-used buckets are at the front: pop while they have refilled completely.
        # Each bucket is popped once, so the cost is spread over the requests that made them.
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.updated < self._refill_time:
                return
            self._buckets.popitem(last=False)
