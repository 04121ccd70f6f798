"""Cold start: wall time and peak memory of whole ``zhiku`` processes, this checkout beside a baseline.

A search takes milliseconds once everything is loaded; what a user waits for at the command line is
the process: the interpreter, the imports and the model loads. This runs each command as a fresh
process (``python -m zhiku.cli ...`` with ``PYTHONPATH`` set to the checkout under test), several
times, alternating the baseline and this checkout run by run so both see the same machine load, and
prints the median wall time and the median peak RSS. Commands (a 9-document knowledge base built
once from the sample corpus):

- ``search``: ``zhiku search "…" --k 3 --json`` (default hybrid mode, default ONNX MiniLM embedder);
- ``ask``: ``zhiku ask "…" --llm extractive --json``;
- ``ask-local``: ``zhiku ask "…" --llm local --json`` with ``--llm-model`` (default ``smollm2``), 16 new
  tokens at most so that generation does not drown the start-up;
- ``ingest``: ``zhiku ingest FILE --json`` of one Markdown file into a new knowledge base;
- ``ui``: ``zhiku ui`` until its first page has rendered: the server is healthy, a WebSocket client
  (``websocket-client``) asks for the page as a browser does, and the script reports finished.

Peak RSS is the largest single process of the command's tree (``wait4``; for ``ui`` the server's
``VmHWM``): parse workers of ``ingest`` are separate processes, not added up.

    python bench/coldstart.py --baseline /tmp/zhiku-main          # a checkout of the branch to compare
    python bench/coldstart.py --commands search,ask --runs 5
    python bench/coldstart.py --out bench/results/coldstart.json   # also write the figures as JSON

Make the baseline with ``git worktree add /tmp/zhiku-main main``. Without ``--baseline`` only this
checkout is measured. Target (issue 15, item 5): ``search`` under 2 s and 400 MiB.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The 9 documents of the knowledge base: every format the sample corpus has, English and Chinese.
DOCUMENTS = (
    "policies/it_security_policy.md", "hr/leave_policy.md", "sales/price_list_2026.csv",
    "finance/q3_2026_business_review.pptx", "it/helpdesk_faq.html", "products/k5_lift_datasheet.pdf",
    "zh/k2_courier_product_intro.md", "zh/q3_2026_shanghai_rd_report.docx", "meetings/2026-10-06_leadership_meeting.txt",
)
QUESTION = "How many days of annual leave do employees in Munich get?"
INGESTED = "policies/code_of_conduct.md"  # not in the knowledge base: ingest does the whole job
COMMANDS = ("search", "ask", "ask-local", "ingest", "ui")


@dataclass
class Run:
    command: str
    version: str  # "baseline" or "current"
    wall_s: float
    peak_mib: float


@dataclass
class Workspace:
    root: Path
    kb: Path
    ingest_file: Path
    llm_model: str

    def argv(self, command: str, run_id: int) -> list[str]:
        kb = ["--kb", str(self.kb)]
        if command == "search":
            return ["search", QUESTION, "--k", "3", "--json", *kb]
        if command == "ask":
            return ["ask", QUESTION, "--llm", "extractive", "--json", *kb]
        if command == "ask-local":
            return ["ask", QUESTION, "--llm", "local", "--json", *kb]
        if command == "ingest":
            return ["ingest", str(self.ingest_file), "--json", "--kb", str(self.root / f"ingest-{run_id}")]
        raise ValueError(command)

    def env(self, code: Path, command: str) -> dict[str, str]:
        """The checkout ``code`` on the path; only ``ask-local`` names an LLM (the UI shows its default).

        Bytecode caches are written, as in an installed Zhiku: with ``PYTHONDONTWRITEBYTECODE`` set (as on
        the development machines) every run compiles Zhiku's modules anew, about 0.2 s of a search's start.
        """
        env = dict(os.environ, PYTHONPATH=str(code))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if command == "ask-local":
            env.update(ZHIKU_LLM_MODEL=self.llm_model, ZHIKU_LLM_MAX_NEW_TOKENS="16")
        return env


def prepare(root: Path, llm_model: str) -> Workspace:
    """The sample corpus, its 9 documents and their knowledge base (built once with this checkout)."""
    corpus, docs = root / "corpus", root / "docs"
    if not (root / "kb").exists():
        subprocess.run([sys.executable, str(ROOT / "examples" / "make_corpus.py"), str(corpus)], check=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL)
        docs.mkdir(exist_ok=True)
        for name in DOCUMENTS:
            shutil.copy2(corpus / name, docs / Path(name).name)
        shutil.copy2(corpus / INGESTED, root / Path(INGESTED).name)
        subprocess.run([sys.executable, "-m", "zhiku.cli", "ingest", str(docs), "--kb", str(root / "kb"), "--json"],
                       check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=root)
    return Workspace(root, root / "kb", root / Path(INGESTED).name, llm_model)


def run_process(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB of the largest process in its tree) of one ``zhiku`` command."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "zhiku.cli", *argv], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"zhiku {' '.join(argv[:2])} exited {proc.returncode}: {proc.stderr.read()[-1500:]!r}")
    proc.stderr.close()
    return wall, usage.ru_maxrss / 1024


def run_ui(kb: Path, env: dict[str, str], cwd: Path, timeout: float = 300) -> tuple[float, float]:
    """(seconds from launch until the first page has rendered, the server's peak RSS MiB)."""
    import websocket  # websocket-client, installed with selenium (the test extra)
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "zhiku.cli", "ui", "--kb", str(kb), "--port", str(port)],
                            env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None or time.perf_counter() - started > timeout:
                raise RuntimeError(f"zhiku ui did not become healthy (exit code {proc.returncode})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                         timeout=timeout)
        ask = BackMsg()
        ask.rerun_script.query_string = ""
        ask.rerun_script.page_script_hash = ""
        ws.send_binary(ask.SerializeToString())
        while True:
            message = ForwardMsg()
            message.ParseFromString(ws.recv())
            if message.WhichOneof("type") == "script_finished":
                break
        wall = time.perf_counter() - started
        ws.close()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
        return wall, peak_kib / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(ws: Workspace, command: str, version: str, code: Path, run_id: int) -> Run:
    env = ws.env(code, command)
    if command == "ui":
        wall, peak = run_ui(ws.kb, env, ws.root)
    else:
        wall, peak = run_process(ws.argv(command, run_id), env, ws.root)
    return Run(command, version, round(wall, 2), round(peak, 1))


def table(runs: list[Run], versions: list[str]) -> str:
    def median(command: str, version: str, key: Callable[[Run], float]) -> str:
        values = [key(r) for r in runs if r.command == command and r.version == version]
        return f"{statistics.median(values):.2f}" if values else "–"

    heads = [f"{v} wall s" for v in versions] + [f"{v} peak MiB" for v in versions]
    lines = ["| command | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for command in dict.fromkeys(r.command for r in runs):
        cells = [median(command, v, lambda r: r.wall_s) for v in versions]
        cells += [median(command, v, lambda r: r.peak_mib).split(".")[0] for v in versions]
        lines.append(f"| {command} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="a checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--commands", default=",".join(COMMANDS), help=f"comma-separated, of {', '.join(COMMANDS)}")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per command and version (default 3)")
    parser.add_argument("--llm-model", default="smollm2", help="the model ask-local loads (default smollm2)")
    parser.add_argument("--workdir", type=Path, help="where the corpus and knowledge bases go (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="write every run and the medians as JSON here")
    args = parser.parse_args(argv)
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    unknown = sorted(set(commands) - set(COMMANDS))
    if unknown:
        parser.error(f"unknown commands {unknown}; choose from {', '.join(COMMANDS)}")
    versions = {"baseline": args.baseline.resolve()} if args.baseline else {}
    versions["current"] = ROOT
    root = args.workdir or Path(tempfile.mkdtemp(prefix="zhiku-coldstart-"))
    root.mkdir(parents=True, exist_ok=True)
    ws = prepare(root.resolve(), args.llm_model)
    runs: list[Run] = []
    run_id = 0
    for command in commands:
        for name, code in versions.items():  # warm-up: page cache, exported ONNX model, converted LLM
            run_id += 1
            print(f"warm-up {command} ({name}): {measure(ws, command, name, code, run_id)}", file=sys.stderr)
        for _ in range(args.runs):
            for name, code in versions.items():  # alternating, so both versions share the machine's load
                run_id += 1
                runs.append(measure(ws, command, name, code, run_id))
                print(runs[-1], file=sys.stderr)
    load = os.getloadavg()
    print(f"{args.runs} runs each, medians; {os.cpu_count()} cores, load average {load[0]:.1f} at the end\n")
    print(table(runs, list(versions)))
    if args.out:
        args.out.write_text(json.dumps({"runs": [asdict(r) for r in runs], "cores": os.cpu_count(),
                                        "load_average_end": load, "question": QUESTION}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
