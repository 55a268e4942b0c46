"""The per-GPU worker processes of one run, as one object: start, listen, judge liveness, stop.

A :class:`WorkerPool` owns everything the workers share (the spawn context, the event queue, the start-line
barrier) and the state of each worker (:class:`WorkerRun`), so the runner reads as its phases and each rule
about a worker (finished, crashed, hung) is one method that a test can name.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as _queue
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlverify.benchmarks.watchdog import PhaseLimits, overdue

KILL_GRACE_S = 3.0
RESULT_JOIN_S = 10.0  # a worker that reported its result has this long to exit on its own

Event = dict[str, Any]
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@dataclass
class WorkerRun:
    """One worker process and what it has told the runner so far."""

    slot: Any  # runner.Slot
    proc: Any
    started: float
    phase: str = "start"
    mode: str | None = None
    entered: float = 0.0  # monotonic time the current phase began (the watchdog's clock)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    phases: list[tuple[str, str, float]] = field(default_factory=list)
    partial: dict[str, dict[str, Any]] = field(default_factory=dict)  # modes/suites done, before the result

    def failure(self, kind: str, error: str, **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "error": error, "phase": self.phase, "mode": self.mode, **extra}


def kill_tree(proc: Any) -> None:
    """Stop a worker and its process group (inductor's compile workers), TERM then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not proc.is_alive():
            break
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        proc.join(KILL_GRACE_S)
    with contextlib.suppress(Exception):
        proc.join(0.1)


class WorkerPool:
    """One worker per slot (``sequential``: one at a time); :meth:`run` returns one record per slot."""

    def __init__(
        self,
        slots: Sequence[Any],
        cfg_dict: dict[str, Any],
        target: Callable[..., None],
        *,
        sequential: bool = False,
        timeout_s: float = 600.0,
        on_event: Callable[[Event], None] | None = None,
        limits: PhaseLimits | None = None,
    ) -> None:
        self.slots = list(slots)
        self.cfg_dict = cfg_dict
        self.target = target
        self.sequential = sequential
        self.timeout_s = timeout_s
        self.notify = on_event or (lambda _e: None)
        self.limits = limits
        self.ctx = mp.get_context("spawn")
        self.queue = self.ctx.Queue()
        # all GPUs start each timed phase together, after their own compile and warm-up, so power, heat and
        # the straggler judgement compare like with like; a worker that fails breaks it and the others go on
        self.barrier = self.ctx.Barrier(len(slots)) if len(slots) > 1 and not sequential else None
        self.pending = list(slots)
        self.running: dict[int, WorkerRun] = {}
        self.finished: dict[int, dict[str, Any]] = {}

    # -- the loop -----------------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        try:
            while self.pending or self.running:
                self.start_due()
                self.drain(0.1)
                now = time.monotonic()
                for run in list(self.running.values()):
                    self.check(run, now)
        finally:
            self.stop_all()
        return self.records()

    def records(self) -> list[dict[str, Any]]:
        return [self.finished[s.slot] for s in self.slots if s.slot in self.finished]

    def start_due(self) -> None:
        while self.pending and (not self.sequential or not self.running):
            s = self.pending.pop(0)
            p = self.ctx.Process(
                target=self.target,
                args=(s.to_dict(), self.cfg_dict, self.queue, self.barrier),
                name=f"dlverify-bench-{s.label}",
                daemon=False,
            )
            # a signal between the spawn and the bookkeeping would leave a worker nobody stops: hold it
            # until the worker is on the books (the worker unblocks them first thing, worker_main)
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                p.start()
                now = time.monotonic()
                self.running[s.slot] = WorkerRun(s, p, now, entered=now)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            self.notify({"slot": s.slot, "event": "started", "t": now, "pid": p.pid})

    def stop_all(self) -> None:
        """Stop every worker still running (normal end, an exception, Ctrl-C or SIGTERM in the parent)."""
        for run in list(self.running.values()):
            kill_tree(run.proc)
        with contextlib.suppress(Exception):
            self.queue.close()

    # -- events from the workers --------------------------------------------------------------------------
    def handle(self, msg: Event) -> None:
        run = self.running.get(msg.get("slot", -1))
        if run is None:
            return
        ev = msg.get("event")
        if ev == "phase":
            run.phase, run.mode = msg.get("phase", run.phase), msg.get("mode", run.mode)
            run.phases.append((str(run.mode), str(run.phase), float(msg["t"])))
            run.entered = time.monotonic()
        elif ev == "progress":
            run.phase, run.mode = "timed", msg.get("mode", run.mode)
            run.entered = time.monotonic()  # a window done: the watchdog's clock restarts
        elif ev == "partial":  # one mode or suite done: kept for a partial report if the run is interrupted
            for key in ("modes", "suites"):
                run.partial.setdefault(key, {}).update(msg.get(key) or {})
        elif ev == "result":
            run.result = msg["result"]
        elif ev == "error":
            run.error = msg
        self.notify(msg)

    def drain(self, block_s: float) -> None:
        deadline = time.monotonic() + block_s
        while True:
            try:
                self.handle(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except _queue.Empty:
                return

    # -- each worker's state --------------------------------------------------------------------------------
    def check(self, run: WorkerRun, now: float) -> None:
        """Finish a worker that reported, died, overstayed its phase (the watchdog) or outlived the run's
        timeout; leave a healthy one running."""
        if run.result is not None or run.error is not None:
            self.reported(run)
        elif not run.proc.is_alive():
            self.drain(0.5)  # its last messages may still be in the pipe
            if run.result is None and run.error is None:
                self.died(run)
        elif self.limits is not None and (
            late := overdue(self.limits, run.mode, run.phase, now - run.entered)
        ):
            self.hung(run, *late, waited_s=now - run.entered)
        elif now - run.started > self.timeout_s:
            kill_tree(run.proc)
            self.finish(
                run,
                run.failure(
                    "timeout",
                    f"no result after {self.timeout_s:.0f} s (stuck in "
                    f"{run.phase}" + (f" of {run.mode})" if run.mode else ")") + "; worker killed",
                ),
            )

    def hung(self, run: WorkerRun, phase: str, limit_s: float, waited_s: float) -> None:
        """The watchdog: a worker past its phase's limit is stopped (TERM, then KILL: a call stuck in the
        driver may not hear TERM), and named with the phase and the time waited; the others run on."""
        kill_tree(run.proc)
        where = f"{phase} ({run.phase}" + (f" of {run.mode})" if run.mode else ")")
        self.finish(
            run,
            run.failure(
                "hung",
                f"no progress in {where} for {waited_s:.1f} s, over the watchdog's {limit_s:.1f} s for that "
                "phase; worker killed",
                watchdog_phase=phase,
                waited_s=round(waited_s, 1),
                limit_s=round(limit_s, 1),
            ),
        )

    def reported(self, run: WorkerRun) -> None:
        run.proc.join(RESULT_JOIN_S)
        if run.proc.is_alive():
            kill_tree(run.proc)
        if run.error is not None:
            self.finish(
                run,
                run.failure(
                    run.error.get("kind", "exception"),
                    run.error["error"],
                    traceback=run.error.get("traceback", ""),
                ),
            )
        else:
            self.finish(run, None)

    def died(self, run: WorkerRun) -> None:
        code = run.proc.exitcode
        how = (
            f"killed by signal {signal.Signals(-code).name}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        self.finish(run, run.failure("crash", f"worker {how} without reporting a result"))

    def interrupt(self, why: str) -> None:
        """Close the books on an interrupted run: every worker not finished is recorded as ``interrupted``
        with ``why``, and what it had completed (``partial``); workers never started likewise, empty.
        Call after :meth:`run` was left by the signal (its ``finally`` has stopped the workers)."""
        for run in list(self.running.values()):
            rec = self._record(run, "interrupted", run.failure("interrupted", why))
            if run.partial:
                rec["result"] = {"partial": True, **run.partial}
            self.finished[run.slot.slot] = rec
            self.running.pop(run.slot.slot, None)
        for s in self.pending:
            self.finished[s.slot] = {
                **s.to_dict(),
                "status": "interrupted",
                "elapsed_s": 0.0,
                "phases": [],
                "failure": {
                    "kind": "interrupted",
                    "error": why + " (never started)",
                    "phase": None,
                    "mode": None,
                },
            }
        self.pending = []

    def _record(self, run: WorkerRun, status: str, failure: dict[str, Any] | None) -> dict[str, Any]:
        rec: dict[str, Any] = {
            **run.slot.to_dict(),
            "status": status,
            "elapsed_s": time.monotonic() - run.started,
            "phases": [list(p) for p in run.phases],
        }
        if failure is not None:
            rec["failure"] = failure
        if run.result is not None:
            rec["result"] = run.result
        return rec

    def finish(self, run: WorkerRun, failure: dict[str, Any] | None) -> None:
        rec = self._record(run, "ok" if failure is None else "failed", failure)
        self.finished[run.slot.slot] = rec
        self.running.pop(run.slot.slot, None)
        if failure is not None and self.barrier is not None:
            self.barrier.abort()
        self.notify(
            {
                "slot": run.slot.slot,
                "event": "finished",
                "status": rec["status"],
                "failure": failure,
                "t": time.monotonic(),
            }
        )
