"""Blender worker processes that can each be stopped alone: one object at a time, a time limit per object.

`concurrent.futures` cannot kill one worker: an object whose import never returns (a texture on a
stalled network file system, a FIFO nobody writes to) would hold its worker, and the job, forever;
only a watchdog outside the Blender process can end it. Here every worker is a spawned process with
its own pipe: the main process sends it one task, waits for the result, the worker's death or the
object's deadline, and kills and replaces a worker whose object ran out of time.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from pathlib import Path

from iebench.files import pid_alive
from iebench.render.worker import ObjectResult, ObjectTask, WorkerOptions, init_worker, render_object

# Seconds a fresh worker may take to import Blender and build the scene before the job gives up on it.
STARTUP_LIMIT_S = 600.0
MAX_FAILED_STARTS = 3  # workers in a row that die before they are ready: then Blender cannot start here
DIED = "the Blender worker died while rendering it (a crash, or out of memory)"


class WorkerStartError(RuntimeError):
    """Blender cannot start in a worker process here (the job stops: no object could be rendered)."""


def timed_out(seconds: float) -> str:
    """The failure reason of an object stopped by the time limit."""
    return f"timed out after {seconds:g} s (--object-timeout): its worker was stopped"


def is_stopped_reason(reason: str) -> bool:
    """Whether a recorded failure is an object that was stopped (timed out, or its worker died): a resume skips those
    unless asked to retry them."""
    return reason.startswith("timed out after ") or reason.startswith("the Blender worker died")


def _serve(connection: Connection, options: WorkerOptions) -> None:
    """A worker process: build the scene, say so, then render each task received until told to stop (None)."""
    init_worker(options)
    connection.send("ready")
    while (task := connection.recv()) is not None:
        connection.send(render_object(task))


SCRATCH_PREFIX = "iebench-worker-"  # + the pool's pid: its workers' temporary folders


def _remove_orphaned_scratch() -> None:
    """Remove the workers' temporary folders of pools whose process is gone (killed before it could)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class _Worker:
    process: object
    connection: Connection
    scratch: str  # the worker's TMPDIR
    ready: bool = False
    task: ObjectTask | None = None
    deadline: float = 0.0
    done: int = 0  # objects rendered by this process


class WorkerPool:
    """`count` Blender workers; `run` yields each task's result as it finishes (failures included), in finishing order."""

    def __init__(self, count: int, options: WorkerOptions, object_timeout: float, recycle_every: int = 200) -> None:
        self.count, self.options, self.object_timeout, self.recycle_every = count, options, object_timeout, recycle_every
        self._context = get_context("spawn")
        self._workers: list[_Worker] = []
        self._failed_starts = 0
        _remove_orphaned_scratch()

    def _start(self) -> _Worker:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs, self.options), daemon=True)
        # The worker's temporary files (Blender's, converted meshes) go to a folder of its own, which is removed when it
        # stops: a killed worker cannot clean up after itself.
        scratch, before = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"), os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = scratch  # a spawned process takes the environment as it is at its start
        try:
            process.start()
        finally:
            if before is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = before
        theirs.close()
        worker = _Worker(process, mine, scratch, deadline=time.monotonic() + STARTUP_LIMIT_S)
        self._workers.append(worker)
        return worker

    def _stop(self, worker: _Worker, kill: bool) -> None:
        if kill:
            worker.process.kill()
        else:
            try:
                worker.connection.send(None)
            except OSError:
                worker.process.kill()
        worker.process.join(timeout=30)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()
        shutil.rmtree(worker.scratch, ignore_errors=True)
        self._workers.remove(worker)

    def run(self, tasks: list[ObjectTask], on_death: Callable[[ObjectTask], bool]) -> Iterator[ObjectResult]:
        """Render the tasks; a task whose worker dies is handed back to `on_death`, which says whether to retry it."""
        pending = list(reversed(tasks))
        try:
            while pending or any(w.task for w in self._workers):
                while len(self._workers) < min(self.count, len(pending) + sum(1 for w in self._workers if w.task)):
                    self._start()
                for worker in self._workers:
                    if worker.ready and worker.task is None and pending:
                        worker.task = pending.pop()
                        worker.deadline = time.monotonic() + self.object_timeout
                        worker.connection.send(worker.task)
                yield from self._collect(pending, on_death)
        finally:
            for worker in list(self._workers):
                self._stop(worker, kill=worker.task is not None)

    def _collect(self, pending: list[ObjectTask], on_death: Callable[[ObjectTask], bool]) -> Iterator[ObjectResult]:
        """Wait for the next message, death or deadline, and deal with each that happened."""
        now = time.monotonic()
        soonest = min(w.deadline for w in self._workers)  # infinite when every worker is idle and ready
        timeout = None if math.isinf(soonest) else max(0.0, soonest - now)
        ready = set(wait([w.connection for w in self._workers] + [w.process.sentinel for w in self._workers], timeout))
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.connection in ready:
                try:
                    message = worker.connection.recv()
                except (EOFError, OSError):  # it died: its pipe closed
                    yield from self._died(worker, pending, on_death)
                    continue
                if message == "ready":
                    worker.ready, worker.deadline = True, math.inf  # no limit while it waits for a task
                    self._failed_starts = 0
                    continue
                worker.task, worker.deadline = None, math.inf
                worker.done += 1
                yield message
                if worker.done >= self.recycle_every:  # Blender's memory creeps up: a fresh process now and then
                    self._stop(worker, kill=False)
            elif worker.process.sentinel in ready:
                yield from self._died(worker, pending, on_death)
            elif now >= worker.deadline:
                if worker.task is None:
                    raise WorkerStartError(f"a Blender worker did not start within {STARTUP_LIMIT_S:g} s")
                task = worker.task
                self._stop(worker, kill=True)
                yield ObjectResult(task.ref.key, error=timed_out(self.object_timeout), seconds=self.object_timeout)

    def _died(self, worker: _Worker, pending: list[ObjectTask], on_death: Callable[[ObjectTask], bool]) -> Iterator[ObjectResult]:
        task = worker.task
        worker.task = None
        self._stop(worker, kill=True)
        if task is None:  # idle or starting: a fresh one is started when there is work
            self._failed_starts = 0 if worker.ready else self._failed_starts + 1
            if self._failed_starts >= MAX_FAILED_STARTS:
                raise WorkerStartError(
                    f"{MAX_FAILED_STARTS} Blender workers in a row exited while starting (exit code {worker.process.exitcode}): "
                    "IEBENCH_BLENDER_LOG=FILE keeps Blender's output"
                )
            return
        if on_death(task):
            pending.append(task)
        else:
            yield ObjectResult(task.ref.key, error=f"{DIED}; exit code {worker.process.exitcode}")
