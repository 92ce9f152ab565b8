"""Progress bar (rich): files, hours of audio, rate and ETA.  Quiet when not a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, files: int, total_bytes: int, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.files, self.total_bytes = files, max(total_bytes, 1)
        self.done = self.done_bytes = 0
        self.audio_s = 0.0
        self.t0 = time.perf_counter()
        self._bar = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("scrub"),
                BarColumn(),
                TextColumn("{task.fields[files]}"),
                TextColumn("{task.fields[hours]}"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[eta]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._bar.add_task(
                "scrub", total=self.total_bytes, files="", hours="", rate="", eta=""
            )
            self._bar.start()
            self._refresh()

    def advance(self, size: int, audio_s: float) -> None:
        self.done += 1
        self.done_bytes += size
        self.audio_s += audio_s
        if self._bar is not None:
            self._refresh()

    def _refresh(self) -> None:
        wall = time.perf_counter() - self.t0
        frac = self.done_bytes / self.total_bytes
        eta = wall * (1 - frac) / frac if frac > 0 else None
        rate = self.audio_s / wall if wall > 0 else 0.0
        assert self._bar is not None  # only called with the bar shown
        self._bar.update(
            self._task,
            completed=self.done_bytes,
            files=f"{self.done}/{self.files} files",
            hours=f"{self.audio_s / 3600:.2f} h audio",
            rate=f"{rate:,.0f}x real time",
            eta=f"ETA {int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "ETA -",
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
