"""Distributed ingest on a Ray cluster (``zhiku ingest PATH --ray [ADDRESS]``).

The same run as ``ingest.pipeline.ingest`` (its plan, report, progress and one writer) with the work
that needs CPUs spread over the cluster: one ``NodeWorker`` actor per node parses files in that
node's own parser processes (under the same ``parse_timeout_s`` and ``parse_memory_mb``), masks
personal data when asked, chunks, extracts triples and embeds, its models loaded once. The driver
reads each new or changed file and ships its bytes with the task, so workers need not see the
driver's disk; the chunks, vectors and triples come back and the driver commits them as they
arrive, one transaction per document, exactly as local ingest does. Everything that touches the
knowledge base stays in the driver, so re-running skips what is stored, and a run killed midway
(driver or worker) leaves a consistent knowledge base that the next run finishes.

Ray is imported only here, and this module only when ``--ray`` is given. Workers need the same
install as the driver (Zhiku, its pinned dependencies, ``ray==2.60.0``) and, for an embedding model
given as a folder, that folder at the same path.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.exceptions import RayActorError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ingest.parse import check_size
from ingest.pipeline import (
    Chunked, Embedded, Failure, Filters, IngestReport, IngestRun, Job, Prepared, Progress, default_workers,
    embed_and_extract, ingest_run, parser_pool, prepare, unreadable_file,
)
from zhiku.errors import ClusterError, ParseError
from zhiku.kb import KnowledgeBase
from zhiku.models import load_embedder
from zhiku.protocols import Extractor
from zhiku.settings import Settings

log = logging.getLogger(__name__)

#: Builds the triple extractor on a worker, once per actor (None: no triples).
ExtractorFactory = Callable[[Settings], Extractor | None]
#: One task's batch: at most this many files or bytes (a bigger file goes alone). Files of one
#: batch are embedded together, as local ingest embeds across documents.
BATCH_FILES = 16
BATCH_BYTES = 32 * 2**20
#: Batches queued on a worker besides the one it works on, so it never waits for the driver.
AHEAD = 1
#: Workers' scratch folders in the temporary folder: this prefix, the actor's pid, a random part.
SCRATCH_PREFIX = "zhiku-ray-"


class NodeWorker:
    """A Ray actor, one per node: parser processes, the embedder and the extractor, loaded once.

    It holds no knowledge base: it turns file bytes into ``Embedded`` documents (or ``Failure``s
    with the same reasons local ingest gives) and the driver stores them.
    """

    def __init__(self, settings: Settings, make_extractor: ExtractorFactory | None, parsers: int) -> None:
        self._embedder = load_embedder(settings.embedding_model, settings.embed_batch_size)
        self._extractor = make_extractor(settings) if make_extractor is not None else None
        self._masked = settings.pii == "mask-ingest"
        self._pool = parser_pool(settings, self._embedder, self._extractor, parsers)
        self._scratch = _scratch_folder()

    def ready(self) -> bool:
        """Answers once the actor is constructed (models it loads eagerly are loaded)."""
        return True

    def process(self, jobs: list[Job], blobs: list[bytes]) -> list[Embedded | Failure]:
        """Parse, chunk, extract and embed a batch of files given by their bytes; one result per job.

        Each file is parsed from a private copy under its own name (the name gives its kind and
        the fallback title), then reported as the original path.
        """
        folder = Path(tempfile.mkdtemp(dir=self._scratch))
        try:
            copies = []
            for i, (job, blob) in enumerate(zip(jobs, blobs)):
                copy = folder / str(i) / job.source.path.name
                copy.parent.mkdir()
                copy.write_bytes(blob)
                copies.append(copy)
            prepared = [prepare(job, _as_original(result, copy, job))
                        for job, copy, result in zip(jobs, copies, self._pool.parse(copies))]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        ready = [p for p in prepared if isinstance(p, Prepared)]
        embedded = iter(embed_and_extract(ready, self._embedder, self._extractor, self._masked))
        return [p if isinstance(p, Failure) else _without_elements(next(embedded)) for p in prepared]

    def close(self) -> None:
        self._pool.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


def _scratch_folder() -> Path:
    """A private folder for this actor's copies of the files it parses. Folders left by actors
    that were killed (``kill -9``, a node restarted) are removed first, so copies of restricted
    files do not linger in the temporary folder."""
    for old in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = old.name[len(SCRATCH_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a pid: not ours to judge
    return True


def _as_original(result: object, copy: Path, job: Job) -> object:
    """A parse of the worker's copy, told as of the original file (its path, also inside a reason)."""
    if isinstance(result, Chunked):
        return dataclasses.replace(result, parsed=dataclasses.replace(result.parsed, path=str(job.source.path)))
    return str(result).replace(str(copy), str(job.source.path))


def _without_elements(item: Embedded) -> Embedded:
    """What the driver needs to commit: the parsed elements are in the chunks already, so they
    are not sent back a second time."""
    parsed = dataclasses.replace(item.prepared.parsed, elements=[])
    return dataclasses.replace(item, prepared=dataclasses.replace(item.prepared, parsed=parsed))


def ingest_on_ray(
    kb: KnowledgeBase,
    paths: Sequence[Path],
    settings: Settings,
    address: str | None = None,
    make_extractor: ExtractorFactory | None = None,
    groups: Sequence[str] | None = None,
    filters: Filters = Filters(),
    prune: bool = False,
    progress: Progress | None = None,
    follow_symlinks: bool = False,
) -> IngestReport:
    """``ingest.pipeline.ingest`` with parsing, extraction and embedding on the Ray cluster at
    ``address`` (``host:port`` of its head; None: the local cluster, started when none runs).

    Ray is started or attached only when something changed. A worker lost midway costs the
    files it held (reported in ``failed``; the next run retries them); the others go on.
    """
    with ingest_run(kb, paths, settings, groups, filters, prune, progress, follow_symlinks) as run:
        if run.todo:
            started = time.perf_counter()
            with connected(address):
                workers = start_workers(settings, make_extractor)
                log.info("%d Ray worker(s) ready in %.1f s", len(workers), time.perf_counter() - started)
                try:
                    _dispatch(run, workers)
                except BaseException:  # an interrupt, say: do not wait for the batches in flight
                    _stop(workers, graceful=False)
                    raise
                _stop(workers, graceful=True)
    return run.report


@contextmanager
def connected(address: str | None) -> Iterator[None]:
    """Attach this process to the cluster at ``address``, or to the local one (started when none
    runs, and stopped with this process); detach afterwards. A process already attached stays so."""
    if ray.is_initialized():
        yield
        return
    where = address or "this machine"
    _check_reachable(address)
    try:
        ray.init(address=address or None, log_to_driver=False, logging_level=logging.WARNING,
                 **({} if address else {"include_dashboard": False}))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"cannot use the Ray cluster at {where}: {_first_line(exc)}. Is `ray start --head` running "
            "there, and is ADDRESS its host:port (port 6379 unless `ray start --port` said otherwise)?"
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast on a ``host:port`` nobody listens on (Ray itself retries for minutes)."""
    host, _, port = (address or "").rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "auto", a ray:// client address or none: Ray resolves those itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}. Start its head there with "
            "`ray start --head` (port 6379 unless --port says otherwise), or give the head's host:port"
        ) from None


@dataclass
class _Worker:
    actor: ray.actor.ActorHandle
    node: str  # the node's id and address, for messages
    busy: int = 0  # batches sent and not yet back
    alive: bool = True


def start_workers(settings: Settings, make_extractor: ExtractorFactory | None) -> list[_Worker]:
    """One ``NodeWorker`` on every live node with a CPU, waited for until it has started.

    Each takes one CPU of Ray's accounting (its own process) and runs ``settings.workers`` parser
    processes, else one fewer than the node's CPUs (at least one), as local ingest does.
    A node whose worker cannot start is left out with a warning; none starting is an error.
    """
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
    if not nodes:
        raise ClusterError("the Ray cluster has no live node with a CPU to ingest on (`ray status` shows them)")
    remote = ray.remote(NodeWorker)
    workers = []
    for node in nodes:
        parsers = default_workers(settings.workers, int(node["Resources"]["CPU"]))
        actor = remote.options(
            num_cpus=1, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        ).remote(settings, make_extractor, parsers)
        workers.append(_Worker(actor, f"node {node['NodeID'][:8]} ({node.get('NodeManagerAddress', '?')})"))
    problems = []
    for worker in workers:
        try:
            ray.get(worker.actor.ready.remote())
        except RayError as exc:
            worker.alive = False
            problems.append(f"{worker.node}: {_first_line(exc)}")
    started = [w for w in workers if w.alive]
    if not started:
        raise ClusterError("no Ray worker could start (each node needs the same Zhiku install as this one): "
                           + "; ".join(problems))
    for problem in problems:
        log.warning("a Ray worker could not start, its node is left out: %s", problem)
    return started


def _batches(run: IngestRun, workers: int) -> Iterator[list[Job]]:
    """``run.todo`` in batches, small enough that every worker gets some of a small run; files no
    worker could parse (empty, too big) fail here, unsent."""
    most = max(1, min(BATCH_FILES, -(-len(run.todo) // (workers * (AHEAD + 1)))))
    batch: list[Job] = []
    size = 0
    for job in run.todo:
        try:
            check_size(job.stat.st_size)
        except ParseError as exc:
            run.fail(Failure(str(job.source.path), str(exc), "parse"), job)
            continue
        if batch and (len(batch) >= most or size + job.stat.st_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(job)
        size += job.stat.st_size
    if batch:
        yield batch


def _dispatch(run: IngestRun, workers: list[_Worker]) -> None:
    """Keep every worker busy with batches and commit what comes back, in the order it comes."""
    batches = _batches(run, len(workers))
    in_flight: dict[ray.ObjectRef, tuple[_Worker, list[Job]]] = {}

    def feed(worker: _Worker) -> None:
        while worker.alive and worker.busy <= AHEAD:
            jobs = next(batches, None)
            if jobs is None:
                return
            sent, blobs = [], []
            for job in jobs:
                try:
                    blobs.append(job.source.path.read_bytes())
                    sent.append(job)
                except OSError as exc:
                    run.fail(unreadable_file(job.source.path, exc), job)
            if sent:
                in_flight[worker.actor.process.remote(sent, blobs)] = (worker, sent)
                worker.busy += 1

    for worker in workers:
        feed(worker)
    while in_flight:
        [ref], _ = ray.wait(list(in_flight), num_returns=1)
        worker, jobs = in_flight.pop(ref)
        worker.busy -= 1
        try:
            results = ray.get(ref)
        except RayError as exc:
            lost = isinstance(exc, RayActorError)
            worker.alive = worker.alive and not lost
            what = "was lost" if lost else "failed on this batch"
            reason = f"the Ray worker on {worker.node} {what} ({_first_line(exc)}); run the ingest again to retry"
            for job in jobs:
                run.fail(Failure(str(job.source.path), reason, "parse"), job)
        else:
            log.info("%s: %d file(s) done", worker.node, len(jobs))
            for job, result in zip(jobs, results):
                if isinstance(result, Failure):
                    run.fail(result, job)
            run.commit([r for r in results if isinstance(r, Embedded)])
        if worker.alive:
            feed(worker)
        elif not any(w.alive for w in workers) and not in_flight and next(batches, None) is not None:
            raise ClusterError("every Ray worker was lost; what was committed is kept, run the ingest again to finish")


def _stop(workers: list[_Worker], graceful: bool) -> None:
    """Stop the actors; ``graceful``: once idle, let each stop its parser processes and remove its
    scratch folder first (else its parsers exit when they see it gone)."""
    for worker in workers:
        if worker.alive and graceful:
            try:
                ray.get(worker.actor.close.remote())
            except RayError as exc:
                log.warning("the Ray worker on %s did not stop cleanly: %s", worker.node, _first_line(exc))
        ray.kill(worker.actor)


def _first_line(exc: BaseException) -> str:
    """An exception as one line: Ray's carry the remote traceback, whose last line names the cause."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]
