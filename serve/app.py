"""The FastAPI application: routes over one ``Assistant``, with keys, limits, metrics, logs and audit.

``create_app(assistant)`` builds the application around an open assistant (tests, one worker);
``app_from_environment`` is the factory each ``zhiku serve`` worker runs (settings from
``ZHIKU_*``, as ``zhiku serve`` sets them). Every route runs as the user the request's key names
(``serve.auth``): what they may not see is answered exactly like what does not exist (404).
Blocking work (retrieval, generation, SQLite) runs in the server's thread pool; the Assistant is
thread-safe and shared by the requests of one worker.
"""
from __future__ import annotations

import logging
import mimetypes
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, Form, Path as PathParam, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.pipeline import IngestReport, ingest
from kg.extract import load_extractor
from kg.graph import UnknownEntityError
from retrieval.assistant import Assistant
from retrieval.catalog import filter_documents
from retrieval.llm import describe_llm
from retrieval.payloads import (
    answer_json, citation_json, document_json, entities_json, neighbors_json, search_json, summary_json,
)
from serve import openai_api, sse
from serve.docs import add_docs
from serve.auth import Authenticator, RateLimited, RateLimiter, Unauthorized
from serve.jobs import Job, Jobs, Progress
from serve.logs import new_request_id, request_id
from serve.metrics import CONTENT_TYPE, Metrics
from serve.schemas import MAX_ID, AskRequest, ChatRequest, FeedbackRequest, SearchRequest
from zhiku import audit
from zhiku.accounts import is_admin, parse_groups
from zhiku.errors import (
    AccountError, AssistantError, DownloadError, KnowledgeBaseBusyError, NotAllowedError, QueryError,
    SettingsError, UsageError, ZhikuError, bug_message,
)
from zhiku.feedback import save_feedback
from zhiku.originals import verified_original
from zhiku.records import Answer, Citation, Hit, User
from zhiku.settings import MODES, Settings, check_mode

log = logging.getLogger("zhiku.serve")

DocId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="a document id (`GET /v1/documents`)")]

API_VERSION = "1"


class NotFound(ZhikuError):
    """The thing asked for does not exist or the caller may not see it (deliberately one answer)."""


#: How each error family is answered; the first matching class wins.
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (Unauthorized, 401), (RateLimited, 429), (NotFound, 404), (UnknownEntityError, 404),
    (openai_api.UnknownModel, 404),
    (NotAllowedError, 403), (QueryError, 422), (SettingsError, 422), (UsageError, 422), (AccountError, 422),
    (KnowledgeBaseBusyError, 409), (DownloadError, 409), (AssistantError, 409), (ZhikuError, 400),
    (FileNotFoundError, 400),
)


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error body every route uses (OpenAI's shape, so its SDK reports the message)."""
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


class _Warmup:
    """Loads the LLM and the default mode's retriever once, in the background; ``/readyz`` reports it."""

    def __init__(self, assistant: Assistant) -> None:
        self.ready = threading.Event()
        self.problem = ""
        self._thread = threading.Thread(target=self._run, args=(assistant,), name="zhiku-warmup", daemon=True)
        self._thread.start()

    def _run(self, assistant: Assistant) -> None:
        try:
            assistant.llm  # noqa: B018 - loads it
            assistant.retriever()
        except Exception as exc:  # reported by /readyz; requests would meet the same problem
            self.problem = str(exc) if isinstance(exc, ZhikuError) else bug_message(log, "warm-up", exc)
        finally:
            self.ready.set()


class RequestLog:
    """ASGI middleware: a request id, one JSON log line, metrics and an audit row for every request."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = new_request_id(headers.get("x-request-id"))
        token = request_id.set(rid)
        scope["zhiku"] = {"user": "-"}
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            user = scope["zhiku"]["user"]
            self.state.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.state.metrics.request_seconds.labels(route).observe(seconds)
            log.info("request", extra={"method": scope["method"], "route": route, "path": scope["path"],
                                       "status": status, "ms": round(1000 * seconds, 1), "user": user})
            if route not in _UNAUDITED:
                await run_in_threadpool(audit.record, self.state.assistant.kb, user, audit.API_REQUEST,
                                        method=scope["method"], route=route, status=status,
                                        ms=round(1000 * seconds, 1), request_id=rid)
            request_id.reset(token)


#: Probes, scrapes and the API's own documentation: nobody's action on the knowledge base, so not audited.
_UNAUDITED = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/docs/assets", "/openapi.json"})


class ServiceState:
    """What the routes of one application share (no module globals)."""

    def __init__(self, assistant: Assistant, clock: Any = time.time) -> None:
        settings = assistant.settings
        self.assistant = assistant
        self.settings: Settings = settings
        self.metrics = Metrics(assistant.kb)
        self.auth = Authenticator(assistant.kb, RateLimiter(settings.api_rate_per_s, settings.api_rate_burst),
                                  clock)
        self.jobs = Jobs(assistant.kb, self._ingest, self._job_finished)
        self.warmup: _Warmup | None = None

    def _ingest(self, paths: Sequence[Path], groups: tuple[str, ...], progress: Progress) -> IngestReport:
        """One job's run: ``zhiku ingest``'s pipeline under the writer lock, files counted by outcome."""
        assistant = self.assistant
        outcomes = self.metrics.ingest_files

        def counted(done: int, total: int, path: str, outcome: str) -> None:
            outcomes.labels(outcome).inc()
            progress(done, total, path, outcome)

        with assistant.kb.writer(notify=lambda message: log.info(message)):
            return ingest(assistant.kb, assistant.embedder, list(paths), self.settings,
                          extractor=load_extractor(self.settings, llm=lambda: assistant.llm),
                          groups=groups or None, progress=counted)

    def _job_finished(self, job: Job) -> None:
        self.metrics.ingest_jobs.labels(job.state).inc()


def create_app(assistant: Assistant, owns_assistant: bool = False, warm: bool = True) -> FastAPI:
    """The service over ``assistant``; ``owns_assistant`` closes it at shutdown; ``warm`` loads models at start."""
    state = ServiceState(assistant)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        if warm:
            state.warmup = _Warmup(assistant)
        try:
            yield
        finally:
            state.jobs.close(wait=True)
            if owns_assistant:
                assistant.close()

    app = FastAPI(title="Zhiku", version=API_VERSION, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Answers from your documents with citations: search, ask (streaming), documents, "
                              "ingest, graph, feedback, and an OpenAI-compatible chat endpoint. Authenticate "
                              "with `Authorization: Bearer KEY` (`zhiku user token create NAME`).")
    app.state.zhiku = state
    app.add_middleware(RequestLog, state=state)
    _add_error_handlers(app)
    _add_routes(app, state)
    add_docs(app, "Zhiku")
    return app


def app_from_environment() -> FastAPI:
    """The factory ``zhiku serve`` points uvicorn at: one Assistant per worker, from ``ZHIKU_*`` settings."""
    return create_app(Assistant.open(Settings.load()), owns_assistant=True)


def _add_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                headers: dict[str, str] = {}
                if status == 401:
                    headers["WWW-Authenticate"] = "Bearer"
                if isinstance(exc, RateLimited):
                    request.app.state.zhiku.metrics.rate_limited.inc()
                    headers["Retry-After"] = str(max(1, round(exc.retry_after_s + 0.5)))
                return _error(status, kind.__name__, str(exc), headers)
        return _error(500, "InternalError", bug_message(log, f"{request.method} {request.url.path}", exc))

    app.add_exception_handler(Exception, handle)
    for kind, _ in _STATUS:
        app.add_exception_handler(kind, handle)


def _add_routes(app: FastAPI, state: ServiceState) -> None:
    assistant, kb, settings, metrics = state.assistant, state.assistant.kb, state.settings, state.metrics

    def current_user(request: Request) -> User:
        """The dependency every /v1 route takes: the key's user (or the local user, without accounts)."""
        user = state.auth.user(request.headers.get("authorization"))
        request.scope.setdefault("zhiku", {})["user"] = user.name
        return user

    def visible_document(doc_id: int, user: User) -> Any:
        try:
            return assistant.document(doc_id, user)
        except AssistantError:
            raise NotFound(f"no document {doc_id}: `GET /v1/documents` lists the documents you may see") from None

    def answer_timed(question: str, user: User, mode: str | None, k: int | None,
                     history: list[Answer]) -> Iterator[str | Answer]:
        """``Assistant.ask_stream`` (checks run now) with the answer's timings recorded in the metrics."""
        mode = check_mode(mode) if mode else settings.mode
        audit.record_question(kb, settings, user.name, question, mode, "api")
        started = time.perf_counter()
        stream = assistant.ask_stream(question, user=user, mode=mode, k=k, history=history)
        backend = describe_llm(assistant.llm)["backend"]

        def timed() -> Iterator[str | Answer]:
            for item in stream:
                if isinstance(item, Answer):
                    metrics.answered(item, mode, backend, time.perf_counter() - started - item.timing.retrieval_ms / 1000)
                yield item

        return timed()

    # ------------------------------------------------------------------ probes
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Ready to answer: the knowledge base reads and the models are loaded (readiness)."""
        checks: dict[str, Any] = {}
        try:
            checks["documents"] = kb.stats()["documents"]
        except Exception as exc:  # a broken database is exactly what readiness reports
            return JSONResponse({"status": "unavailable", "reason": f"knowledge base unreadable: {exc}"}, 503)
        warmup = state.warmup
        if warmup is not None and not warmup.ready.is_set():
            return JSONResponse({"status": "starting", "reason": "loading models", **checks}, 503)
        if warmup is not None and warmup.problem:
            return JSONResponse({"status": "unavailable", "reason": warmup.problem, **checks}, 503)
        return JSONResponse({"status": "ready", "llm": describe_llm(assistant.llm), "mode": settings.mode, **checks})

    @app.get("/metrics", tags=["operations"])
    def prometheus() -> Response:
        """Prometheus metrics of this worker."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    # ------------------------------------------------------------------ search and answers
    @app.post("/v1/search", tags=["answers"])
    def search(body: SearchRequest, user: User = Depends(current_user)) -> dict[str, Any]:
        """Ranked passages the caller may see, without generation (``zhiku search --json``)."""
        mode = check_mode(body.mode) if body.mode else settings.mode
        audit.record_question(kb, settings, user.name, body.query, mode, "api-search")
        started = time.perf_counter()
        hits = assistant.search(body.query, mode=mode, k=body.k, user=user)
        metrics.retrieval_seconds.labels(mode).observe(time.perf_counter() - started)
        return search_json(body.query, mode, hits)

    @app.post("/v1/ask", tags=["answers"], responses={200: {"content": {"text/event-stream": {}}}})
    def ask(body: AskRequest, user: User = Depends(current_user)) -> Any:
        """A grounded answer with citations (``zhiku ask --json``); with ``"stream": true``, server-sent
        events: ``token`` (text as generated), one ``citation`` per source, then ``done`` (the whole answer)."""
        history = [Answer(text=t.answer, question=t.question) for t in body.history]
        stream = answer_timed(body.question, user, body.mode, body.k, history)
        llm = describe_llm(assistant.llm)
        if not body.stream:
            answer = next(item for item in stream if isinstance(item, Answer))
            return answer_json(answer, llm)

        def events() -> Iterator[str]:
            for item in sse.guarded(stream, log):
                if isinstance(item, str):
                    yield sse.event("token", {"text": item})
                elif isinstance(item, Answer):
                    for citation in citation_json(item):
                        yield sse.event("citation", citation)
                    yield sse.event("done", answer_json(item, llm))
                else:
                    yield sse.event("error", item)

        return StreamingResponse(events(), media_type="text/event-stream", headers=sse.HEADERS)

    # ------------------------------------------------------------------ documents
    @app.get("/v1/documents", tags=["documents"])
    def documents(user: User = Depends(current_user), q: str = "", kind: list[str] = Query(default=[]),
                  group: list[str] = Query(default=[]), offset: int = Query(0, ge=0),
                  limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        """The documents the caller may see: ``q`` in the title or path, of a ``kind``, in a ``group``; paged."""
        shown = filter_documents(kb.documents(user), q, kind, group)
        page = [assistant.document(d.id, user) for d in shown[offset:offset + limit]]  # masked when pii is on
        return {"documents": [document_json(d) for d in page], "total": len(shown),
                "offset": offset, "limit": limit}

    @app.get("/v1/documents/{doc_id}", tags=["documents"])
    def document(doc_id: DocId, user: User = Depends(current_user)) -> dict[str, Any]:
        """One document's catalogue entry and its key entities."""
        doc = visible_document(doc_id, user)
        return {**document_json(doc), "entities": assistant.key_entities(doc.id, user)}

    @app.get("/v1/documents/{doc_id}/file", tags=["documents"],
             responses={200: {"content": {"application/octet-stream": {}}}})
    def document_file(doc_id: DocId, user: User = Depends(current_user)) -> Response:
        """The original file, re-checked now: the caller may see it and it is the file that was ingested."""
        visible_document(doc_id, user)
        if settings.pii != "off":
            raise DownloadError("original files are not served while personal data is masked (setting `pii`)")
        try:
            path, data = verified_original(kb, user, doc_id)
        except DownloadError:
            audit.record(kb, user.name, audit.DOWNLOAD, doc_id=doc_id, ok=False, surface="api")
            raise
        audit.record(kb, user.name, audit.DOWNLOAD, doc_id=doc_id, source=str(path), ok=True, surface="api")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Response(data, media_type=media,
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(path.name)}"})

    @app.get("/v1/documents/{doc_id}/summary", tags=["documents"])
    def document_summary(doc_id: DocId, refresh: bool = False, user: User = Depends(current_user)) -> dict[str, Any]:
        """The document's summary, key points and entities (``zhiku summarize --json``), cached for everyone."""
        doc = visible_document(doc_id, user)
        return summary_json(doc, assistant.summarize(doc.id, user, refresh=refresh))

    # ------------------------------------------------------------------ ingest
    @app.post("/v1/ingest", tags=["ingest"], status_code=202)
    def start_ingest(user: User = Depends(current_user), files: list[UploadFile] = File(default=[]),
                     paths: str = Form("", description="server files or folders, one per line, inside "
                                                        "the ui_ingest_roots allow-list"),
                     groups: str = Form("", description="access groups, comma-separated (empty: public, or "
                                                         "the folder's zhiku-acl.toml)")) -> dict[str, Any]:
        """Admins: ingest uploaded files and/or server paths as a background job (``GET /v1/jobs/{id}``)."""
        from ingest.uploads import allowed_path, save_upload

        if not is_admin(user, settings.admin_group):
            raise NotAllowedError(f"only members of the group {settings.admin_group!r} (setting admin_group) "
                                  "may ingest")
        chosen_groups = parse_groups(groups)
        typed = [p.strip() for line in paths.splitlines() for p in line.split(";") if p.strip()]
        chosen = [allowed_path(Path(p), settings.ui_ingest_roots) for p in typed]
        for upload in files:
            chosen.append(save_upload(kb.root, upload.filename or "", upload.file.read(), settings.upload_max_mb))
        if not chosen:
            raise UsageError("nothing to ingest: upload files (multipart field `files`) or name server paths "
                             "(field `paths`)")
        job = state.jobs.start(user, chosen, chosen_groups)
        return {**job.to_json(), "status_url": f"/v1/jobs/{job.id}"}

    @app.get("/v1/jobs/{job_id}", tags=["ingest"])
    def job_status(job_id: str, user: User = Depends(current_user)) -> dict[str, Any]:
        """An ingest job's state and progress; when done, the report of ``zhiku ingest --json``."""
        job = state.jobs.get(job_id)
        if job is None or not (job.user == user.name or is_admin(user, settings.admin_group)):
            raise NotFound(f"no job {job_id!r}")
        return job.to_json()

    # ------------------------------------------------------------------ graph
    @app.get("/v1/graph/entities", tags=["graph"])
    def graph_entities(user: User = Depends(current_user), limit: int = Query(50, ge=1, le=1000),
                       by: str = Query("degree", pattern="^(degree|pagerank)$"), type: str | None = None,
                       doc: int | None = Query(None, ge=1, le=MAX_ID)) -> dict[str, Any]:
        """Entities of the graph the caller may see (``zhiku graph entities --json``), most connected first."""
        graph = assistant.graph().for_user(user)
        keys = set(graph.entities_of(visible_document(doc, user).id)) if doc is not None else None
        return {"entities": entities_json(graph, by, type, keys, limit)}

    @app.get("/v1/graph/neighbors", tags=["graph"])
    def graph_neighbors(entity: str, user: User = Depends(current_user), hops: int = Query(1, ge=1, le=3),
                        limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        """Relations around an entity, nearest first (``zhiku graph neighbors --json``)."""
        graph = assistant.graph().for_user(user)
        key = graph.require(entity)
        return neighbors_json(graph, key, hops, graph.neighbors(key, hops=hops, limit=limit),
                              graph.distances(key, hops=hops))

    # ------------------------------------------------------------------ feedback
    @app.post("/v1/feedback", tags=["answers"], status_code=201)
    def feedback(body: FeedbackRequest, user: User = Depends(current_user)) -> dict[str, Any]:
        """Thumbs up (1) or down (-1) on an answer, kept for evaluation with the cited passages."""
        chunks = kb.chunks_by_ids(body.chunk_ids)
        citations = []
        for n, chunk_id in enumerate(body.chunk_ids, 1):
            chunk = chunks.get(chunk_id)
            doc = kb.get_document(chunk.doc_id) if chunk is not None and chunk.doc_id is not None else None
            if chunk is None or doc is None or not user.can_see(doc.groups):
                raise NotFound(f"no passage {chunk_id}: cite the chunk_id values an answer gave you")
            citations.append(Citation(n, Hit(chunk=chunk, document=doc, score=0.0)))
        answer = Answer(text=body.answer, citations=citations, question=body.question)
        return {"id": save_feedback(kb, user, answer, body.rating, body.comment)}

    # ------------------------------------------------------------------ OpenAI-compatible
    @app.get("/v1/models", tags=["openai"])
    def models(user: User = Depends(current_user)) -> dict[str, Any]:
        """``zhiku`` (the default retrieval mode) and ``zhiku-<mode>`` for each mode."""
        return openai_api.models(MODES)

    @app.post("/v1/chat/completions", tags=["openai"], responses={200: {"content": {"text/event-stream": {}}}})
    def chat_completions(body: ChatRequest, request: Request, user: User = Depends(current_user)) -> Any:
        """OpenAI chat completions: the last user message is the question, earlier turns the conversation;
        the reply carries its sources (appended, and as ``citations``)."""
        mode = openai_api.mode_of(body.model, MODES)
        question, history = openai_api.conversation(body.messages)
        stream = answer_timed(question, user, mode, None, history)
        completion_id = "chatcmpl-" + request_id.get()
        if not body.stream:
            answer = next(item for item in stream if isinstance(item, Answer))
            return openai_api.completion(completion_id, body.model, question, answer)
        chunks = openai_api.completion_chunks(completion_id, body.model, sse.guarded(stream, log))
        return StreamingResponse((sse.data(c) for c in chunks), media_type="text/event-stream", headers=sse.HEADERS)


__all__ = ["create_app", "app_from_environment"]
