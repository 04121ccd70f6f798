"""Parser worker processes: every file is parsed in one, under a wall-clock timeout and a memory cap.

Parsers run third-party code on untrusted bytes, so no file is ever parsed in the calling process
(an ingest from the UI or the service would die with it). Each worker parses one file at a time;
a file that takes longer than the timeout gets its worker killed, one that exhausts the memory cap
(``RLIMIT_AS``: allocations fail inside the worker) or kills its worker some other way is reported
with that reason, and a fresh worker takes the next file. Such a file is never tried again here.

A pool may be given a ``stage``: a picklable callable each worker applies to every file it parsed
(ingest chunks, masks and extracts triples there, so that work runs beside the parsing instead of
in the process that embeds). The stage runs outside the memory cap and under a deadline of its
own, the same ``timeout_s`` counted from the end of the parse.

Workers are forked from a forkserver that has imported most parsers already, so a worker starts
warm, also one restarted after a kill, and stays alive for the next file. The memory cap is the address space one parse may add
on top of what the worker holds before it, imports done: the PDF stack alone reserves about 1 GB
of address space, which would otherwise eat most of any cap.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from contextlib import contextmanager

from ingest.parse import ParsedFile, ParseError, load_partitioner, parse_file

#: What a worker sends when an allocation failed under its cap (it exits right after).
_OUT_OF_MEMORY = "\0out-of-memory"
#: What a worker with a stage sends when the parse is done and the stage begins.
_PARSED = "\0parsed"
#: How often the feeder looks again for a free slot or a result (seconds).
_POLL_S = 0.2


#: What a worker does with each parsed file (and the seconds its parse took) before sending it back (picklable).
Stage = Callable[[ParsedFile, float], object]


@dataclass(frozen=True)
class ParseLimits:
    timeout_s: float
    memory_mb: int


def _serve(conn: Connection, memory_mb: int, ocr: str, stage: Stage | None) -> None:
    """The worker's loop: receive a path, send back a ``ParsedFile`` (or what ``stage`` made of
    it) or a one-line reason."""
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        started = time.perf_counter()
        try:
            load_partitioner(path, ocr)
            with _memory_cap(memory_mb):
                result: object = parse_file(path, ocr=ocr)
        except ParseError as exc:
            result = str(exc)
        except MemoryError:
            result = _OUT_OF_MEMORY
        except Exception as exc:  # report, never die: the next file goes on in this worker
            result = f"cannot parse ({type(exc).__name__}: {str(exc)[:200]})"
        if stage is not None and isinstance(result, ParsedFile):
            conn.send(_PARSED)
            try:
                result = stage(result, time.perf_counter() - started)
            except Exception as exc:
                result = f"cannot prepare the parsed file ({type(exc).__name__}: {str(exc)[:200]})"
        conn.send(result)
        if result == _OUT_OF_MEMORY:
            return  # the heap may be fragmented or half-built: a fresh worker takes the next file


@contextmanager
def _memory_cap(memory_mb: int) -> Iterator[None]:
    """Let the address space grow by at most ``memory_mb`` inside the block (the soft limit; the
    hard one stays, so the cap is lifted again for the next file's imports)."""
    if memory_mb <= 0:
        yield
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _address_space() + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _address_space() -> int:
    """This process's virtual memory size in bytes (what ``RLIMIT_AS`` limits)."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection


class ParserPool:
    """Up to ``size`` warm workers; ``parse`` yields one result per path, in input order.

    Use as a context manager: leaving it stops the workers (and kills any still busy).
    """

    def __init__(self, size: int, limits: ParseLimits, ocr: str = "auto", stage: Stage | None = None) -> None:
        self.size = max(1, size)
        self.limits = limits
        self.ocr = ocr  # the ``ocr`` setting: whether scanned pages and images are read
        self.stage = stage
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["ingest.workers", "ingest.warm"])
        self._idle: list[_Worker] = []
        self._busy: dict[int, tuple[_Worker, int, float, bool]] = {}  # pid -> (worker, index, deadline, parsed)
        self._feeding: tuple[threading.Thread, threading.Event] | None = None

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parse(self, paths: Sequence[Path]) -> Iterator[object]:
        """Parse ``paths``: each result is a ``ParsedFile`` (what the stage made of it, with one)
        or the reason the file failed.

        A feeder thread keeps the workers busy while the caller works on earlier results (chunking
        and embedding overlap parsing); at most ``2 * size`` files are parsed ahead of the caller.
        """
        results: queue.Queue[tuple[int, object] | BaseException] = queue.Queue()
        slots = threading.Semaphore(2 * self.size)
        stop = threading.Event()
        feeder = threading.Thread(target=self._feed, args=(paths, results, slots, stop), daemon=True,
                                  name="zhiku-parse-feeder")
        feeder.start()
        self._feeding = feeder, stop
        ready: dict[int, object] = {}
        try:
            for wanted in range(len(paths)):
                while wanted not in ready:
                    item = results.get()
                    if isinstance(item, BaseException):
                        raise item
                    ready[item[0]] = item[1]
                slots.release()
                yield ready.pop(wanted)
        finally:
            self._stop_feeding()

    def _feed(self, paths: Sequence[Path], results: queue.Queue, slots: threading.Semaphore,
              stop: threading.Event) -> None:
        """Send files to free workers while there are slots; pass on results as they come."""
        try:
            sent = 0
            while not stop.is_set() and (sent < len(paths) or self._busy):
                while sent < len(paths) and len(self._busy) < self.size and slots.acquire(blocking=False):
                    self._send(paths[sent], sent)
                    sent += 1
                if not self._busy:  # the caller is behind: wait for it to take a result
                    if slots.acquire(timeout=_POLL_S):
                        slots.release()
                    continue
                for index, result in self._collect().items():
                    results.put((index, result))
        except BaseException as exc:  # the caller re-raises it (a worker that cannot start, say)
            results.put(exc)

    def _stop_feeding(self) -> None:
        if self._feeding is not None:
            feeder, stop = self._feeding
            stop.set()
            feeder.join()
            self._feeding = None

    def close(self) -> None:
        self._stop_feeding()  # a caller that left mid-way (an error while embedding) leaves one running
        for worker, *_ in self._busy.values():
            _kill(worker)
        self._busy.clear()
        for worker in self._idle:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self._idle:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                _kill(worker)
            worker.conn.close()
        self._idle.clear()

    def _send(self, path: Path, index: int) -> None:
        worker = self._idle.pop() if self._idle else self._start()
        try:
            worker.conn.send(path)
        except OSError:  # it died while idle: a fresh one takes the file
            _kill(worker)
            worker = self._start()
            worker.conn.send(path)
        assert worker.process.pid is not None
        self._busy[worker.process.pid] = (worker, index, time.monotonic() + self.limits.timeout_s, False)

    def _start(self) -> _Worker:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs, self.limits.memory_mb, self.ocr, self.stage), daemon=True,
                                        name="zhiku-parser")
        process.start()
        theirs.close()
        return _Worker(process, mine)

    def _collect(self) -> dict[int, object]:
        """Wait a moment for busy workers to finish, die or run out of time; their results."""
        soonest = min(deadline for _, _, deadline, _ in self._busy.values())
        timeout = min(_POLL_S, max(0.0, soonest - time.monotonic()))
        ready = set(wait([w.conn for w, *_ in self._busy.values()], timeout))
        done: dict[int, object] = {}
        for pid, (worker, index, deadline, parsed) in list(self._busy.items()):
            if worker.conn in ready:
                try:
                    result = worker.conn.recv()
                except (EOFError, OSError):
                    result = self._death(worker)
                else:
                    if result == _PARSED:  # the stage's own deadline starts now
                        self._busy[pid] = (worker, index, time.monotonic() + self.limits.timeout_s, True)
                        continue
                    if result == _OUT_OF_MEMORY:
                        result = f"the parser worker ran out of memory (over the {self.limits.memory_mb} MiB cap)"
                        _kill(worker)
                    else:
                        self._idle.append(worker)
            elif time.monotonic() >= deadline:
                _kill(worker)
                doing = "preparing the parsed file (chunks, triples)" if parsed else "parsing"
                result = f"the parser worker timed out after {self.limits.timeout_s:g} s {doing} (parse_timeout_s)"
            else:
                continue
            del self._busy[pid]
            done[index] = result
        return done

    def _death(self, worker: _Worker) -> str:
        worker.process.join(timeout=5)
        worker.conn.close()
        code = worker.process.exitcode
        if code == -signal.SIGKILL:
            return "the parser worker was killed (SIGKILL: by the system's out-of-memory killer?)"
        if code is not None and code < 0:
            return f"the parser worker was killed by signal {signal.Signals(-code).name} (a crash in the parser)"
        return f"the parser worker exited unexpectedly (exit code {code})"


def _kill(worker: _Worker) -> None:
    if worker.process.is_alive():
        worker.process.kill()
    worker.process.join(timeout=5)
    worker.conn.close()
