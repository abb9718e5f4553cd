"""Progress for long work: count, rate (units/s) and ETA on stderr, at most once per interval."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int | None = None, unit: str = "rows", interval: float = 1.0,
                 stream=None, enabled: bool = True):
        self.label, self.total, self.unit, self.interval = label, total, unit, interval
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._print()

    def line(self) -> str:
        rate = self.rate
        text = f"{self.label}: {self.done:,}"
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            eta_s = f"{eta:,.0f}s" if eta != float("inf") else "?"
            text += f"/{self.total:,} {self.unit} ({pct:.0f}%) {rate:,.0f} {self.unit}/s ETA {eta_s}"
        else:
            text += f" {self.unit} {rate:,.0f} {self.unit}/s"
        return text

    def _print(self) -> None:
        if not self.enabled:
            return
        end = "\r" if self.stream.isatty() else "\n"
        print(self.line(), end=end, file=self.stream, flush=True)

    def close(self) -> str:
        elapsed = time.monotonic() - self.start
        summary = f"{self.label}: {self.done:,} {self.unit} in {elapsed:,.1f}s ({self.rate:,.0f} {self.unit}/s)"
        if self.enabled:
            print(summary + (" " * 10 if self.stream.isatty() else ""), file=self.stream, flush=True)
        return summary
