"""Per-GPU progress bars (rich), fed by the runner's worker events. Silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from dlverify.benchmarks.runner import Slot


class ProgressView:
    """One bar per GPU: its phase (import, compile, warmup, timed) and the timed seconds done."""

    def __init__(
        self, slots: Sequence[Slot], modes: Sequence[str], duration_s: float, enabled: bool | None = None
    ) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._slots = {s.slot: s for s in slots}
        self._modes = list(modes)
        self._per_mode = max(duration_s, 1e-9)
        self._progress: Any = None
        self._tasks: dict[int, Any] = {}

    def __enter__(self) -> ProgressView:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.fields[label]:>6}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._progress.__enter__()
        total = self._per_mode * len(self._modes)
        for k, s in self._slots.items():
            self._tasks[k] = self._progress.add_task("", total=total, label=s.label, status="waiting")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def __call__(self, ev: dict[str, Any]) -> None:
        if self._progress is None or ev.get("slot") not in self._tasks:
            return
        task = self._tasks[ev["slot"]]
        kind = ev.get("event")
        mode = ev.get("mode")
        offset = self._modes.index(mode) * self._per_mode if mode in self._modes else 0.0
        if kind == "phase":
            self._progress.update(task, status=f"{mode} {ev.get('phase')}")
        elif kind == "progress":
            self._progress.update(task, completed=offset + float(ev.get("done", 0.0)), status=f"{mode} timed")
        elif kind == "finished":
            if ev.get("status") == "ok":
                self._progress.update(task, completed=self._per_mode * len(self._modes), status="[green]done")
            else:
                f = ev.get("failure") or {}
                self._progress.update(task, status=f"[red]{f.get('kind', 'failed')}")
