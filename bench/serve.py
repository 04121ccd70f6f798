"""Load test of ``zhiku serve`` on loopback: concurrent clients on ``/v1/search``, then on ``/v1/ask``.

Builds (once, cached under ``--workdir``) a knowledge base from the sample corpus with an account
and an API key, starts ``zhiku serve`` as a real subprocess on a free loopback port (extractive
answers, the per-key rate limit raised out of the way), waits for ``/readyz``, then runs
``--clients`` threads, each with its own HTTP connection, for ``--seconds`` per endpoint, cycling
through the sample questions. Every request is authenticated, rate-checked, audited and counted,
as in production. Reports requests/s, p50/p95/p99 latency and errors (any status but 200), and
checks the server's own request counter against the client's.

    python bench/serve.py                        # 8 clients, 30 s per endpoint, 1 worker
    python bench/serve.py --clients 4 --seconds 10 --workers 2

Clients and server share the machine's cores, so on a small machine the figures are a floor.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zhiku  # noqa: E402,F401 - offline environment before model libraries load

QUESTIONS = (
    "What is the hotel cap in Europe?",
    "How long is probation in Germany?",
    "Who founded Kestrel Robotics?",
    "How quickly must security incidents be reported?",
    "Which gifts may employees accept?",
    "What is the per diem in Germany?",
    "差旅报销需要在多少天内提交？",
    "How is private car use reimbursed?",
)
ENDPOINTS = (
    ("/v1/search", lambda q: {"query": q}),
    ("/v1/ask", lambda q: {"question": q}),
)


@dataclass
class Run:
    endpoint: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        ordered = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1) if ordered else 0.0

        done = len(ordered) + sum(self.errors.values())
        return {"endpoint": self.endpoint, "requests": done, "rps": round(done / self.seconds, 1),
                "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
                "mean_ms": round(statistics.fmean(ordered), 1) if ordered else 0.0,
                "errors": sum(self.errors.values()), "error_kinds": self.errors}


def build_kb(workdir: Path) -> tuple[Path, str]:
    """The sample corpus ingested into ``workdir/kb`` (once), with user ``bench`` and a fresh API key."""
    from zhiku.accounts import accounts, add_user, create_token
    from zhiku.kb import KnowledgeBase

    kb_path = workdir / "kb"
    if not KnowledgeBase.exists(kb_path):
        corpus = workdir / "corpus"
        subprocess.run([sys.executable, str(ROOT / "examples" / "make_corpus.py"), str(corpus)], check=True)
        subprocess.run([sys.executable, "-m", "zhiku.cli", "ingest", str(corpus), "--kb", str(kb_path), "--json"],
                       check=True, stdout=subprocess.DEVNULL, env=_env(), cwd=ROOT)
    with KnowledgeBase.open(kb_path, "minilm") as kb:
        if not any(a.user.name == "bench" for a in accounts(kb)):
            add_user(kb, "bench", "bench-password-long", ("engineering", "hr"))
        _, key = create_token(kb, "bench")
    return kb_path, key


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(kb: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = _env(ZHIKU_LLM="extractive", ZHIKU_API_RATE_PER_S="100000", ZHIKU_API_RATE_BURST="100000")
    command = [sys.executable, "-m", "zhiku.cli", "serve", "--kb", str(kb), "--port", str(port),
               "--workers", str(workers), "--log-level", "warning"]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ready(base: str, server: subprocess.Popen, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"zhiku serve exited with {server.returncode} before it was ready")
        try:
            ready = httpx.get(base + "/readyz", timeout=5)
            if ready.status_code == 200:
                return ready.json()
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"zhiku serve was not ready within {timeout_s:.0f} s")


def load(base: str, key: str, endpoint: str, body, clients: int, seconds: float) -> Run:
    """``clients`` threads send requests back to back for ``seconds``; each records its latencies."""
    run = Run(endpoint, seconds)
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        latencies, errors = [], {}
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
            n = index
            while time.perf_counter() < stop_at:
                question = QUESTIONS[n % len(QUESTIONS)]
                n += 1
                started = time.perf_counter()
                try:
                    response = http.post(endpoint, json=body(question))
                    kind = None if response.status_code == 200 else str(response.status_code)
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                elapsed = 1000 * (time.perf_counter() - started)
                if kind is None:
                    latencies.append(elapsed)
                else:
                    errors[kind] = errors.get(kind, 0) + 1
        with lock:
            run.latencies_ms.extend(latencies)
            for kind, count in errors.items():
                run.errors[kind] = run.errors.get(kind, 0) + count

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return run


def served_count(base: str, endpoint: str) -> int:
    """The server's own count of 200s on ``endpoint`` (one worker's, with several workers)."""
    text = httpx.get(base + "/metrics", timeout=10).text
    pattern = rf'zhiku_requests_total\{{method="POST",route="{re.escape(endpoint)}",status="200"\}} ([0-9.e+]+)'
    match = re.search(pattern, text)
    return int(float(match.group(1))) if match else 0


def report(rows: list[dict], args: argparse.Namespace, ready: dict, served: dict[str, int]) -> str:
    lines = [
        "# Service load test: `zhiku serve` on loopback",
        "",
        f"{platform.machine()}; {os.cpu_count()} cores; {args.clients} concurrent clients (threads, one HTTP "
        f"connection each) for {args.seconds:g} s per endpoint; {args.workers} server worker(s); sample corpus "
        f"({ready.get('documents')} documents); answer backend {ready.get('llm', {}).get('backend')}; mode "
        f"{ready.get('mode')}. Every request carries an API key and goes through authentication, the rate "
        "limiter (raised out of the way), the audit log and the metrics, as in production. Clients and "
        "server share the cores (and the machine was shared with other jobs), so the figures are a floor.",
        "",
        "Command: `python bench/serve.py " + " ".join(sys.argv[1:]) + "`",
        "",
        "| endpoint | requests | requests/s | p50 ms | p95 ms | p99 ms | mean ms | errors | server counted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| `{r['endpoint']}` | {r['requests']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | "
                     f"{r['p99_ms']} | {r['mean_ms']} | {r['errors']} {r['error_kinds'] or ''} | "
                     f"{served.get(r['endpoint'], '')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/zhiku-bench-serve"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.md")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    kb, key = build_kb(args.workdir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(kb, port, args.workers, args.workdir / "server.log")
    try:
        ready = wait_ready(base, server)
        rows, served = [], {}
        for endpoint, body in ENDPOINTS:
            load(base, key, endpoint, body, args.clients, 2.0)  # warm-up, not counted
            before = served_count(base, endpoint)
            row = load(base, key, endpoint, body, args.clients, args.seconds).row()
            served[endpoint] = served_count(base, endpoint) - before
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    text = report(rows, args, ready, served)
    args.out.write_text(text, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(text)
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
