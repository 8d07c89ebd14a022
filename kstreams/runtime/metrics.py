"""Sensors for Kafka Streams' metric names: rates and average latencies over a sliding window."""

from __future__ import annotations

import threading
import time
from collections import deque


class Sensor:
    """Counts events (with an optional value, e.g. a latency) over the last ``window_s`` seconds.

    ``rate()`` is events per second in the window; ``avg()`` the mean value; ``total`` counts
    every event ever recorded.
    """

    def __init__(self, window_s: float = 30.0) -> None:
        self._window = window_s
        self._samples: deque[tuple[float, float, float]] = deque()  # (time, count, value sum)
        self._lock = threading.Lock()
        self.total = 0.0
        self._start = time.monotonic()

    def record(self, count: float = 1.0, value: float = 0.0) -> None:
        """Record ``count`` events whose values sum to ``value``."""
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, count, value))
            self.total += count
            self._expire(now)

    def _expire(self, now: float) -> None:
        cutoff = now - self._window
        while self._samples and self._samples[0][0] < cutoff:
            self._samples.popleft()

    def rate(self) -> float:
        """Events per second over the window (or since creation, if younger)."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            count = sum(s[1] for s in self._samples)
        span = min(self._window, max(now - self._start, 1e-3))
        return count / span

    def avg(self) -> float:
        """Mean value per event in the window (0 if none)."""
        with self._lock:
            self._expire(time.monotonic())
            count = sum(s[1] for s in self._samples)
            value = sum(s[2] for s in self._samples)
        return value / count if count else 0.0
