"""Local generation speed: every installed packaged model on both runtimes, same prompt, one run.

For each model (SmolLM2-135M, and Qwen2.5 0.5B / 1.5B where their packages are installed) and each
runtime (transformers float32, the baseline; CTranslate2 int8, the default), one fresh process
loads the model (conversions are cached and not timed), answers a grounded prompt of about 1,500
tokens built by the product's own prompt builder from the sample corpus' passages, and reports
the time to the first token, the decoding rate after it, load time and peak RSS. Greedy decoding
with the same settings on both runtimes.

    python bench/llm.py                       # every installed model
    python bench/llm.py --models smollm2      # one
    python bench/llm.py --new-tokens 64 --repeats 2

Writes ``bench/results/llm.json`` and ``llm.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # run as a script: the repository root, not bench/

import zhiku  # noqa: E402,F401 - offline environment before model libraries load

RUNTIMES = ("transformers", "ctranslate2")
#: Asks for a long, cited answer, so the decoding rate is measured over many tokens.
QUESTION = "Summarise the travel and expenses policy in detail: every limit, approval and deadline, with citations."
PROMPT_TOKENS = 1500
#: Issue 13's targets, for a quiet 2-core machine: (model, runtime, figure, comparison, bound).
TARGETS = (
    ("qwen0.5b", "ctranslate2", "first_token_s", "<", 3.0),
    ("qwen0.5b", "ctranslate2", "tokens_per_s", ">=", 12.0),
    ("qwen1.5b", "ctranslate2", "tokens_per_s", ">=", 5.0),
)
#: CTranslate2 int8 against transformers float32 on the same model and prompt.
SPEEDUP_TARGET = 4.0


def sample_hits() -> list:
    """Passages from the sample corpus' source files, as hits, the travel policy's first (as retrieval
    would rank them for ``QUESTION``; no knowledge base needed)."""
    from zhiku.records import Chunk, Document, Hit
    from zhiku.text import split_sentences

    hits = []
    paths = sorted((ROOT / "examples" / "sources").rglob("*.md"), key=lambda p: ("travel" not in p.name, str(p)))
    for n, path in enumerate(paths):
        text = path.read_text(encoding="utf-8")
        paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200]
        for i, paragraph in enumerate(paragraphs):
            body = " ".join(split_sentences(paragraph))
            hits.append(Hit(Chunk(text=body, position=i, n_tokens=0, id=len(hits) + 1, doc_id=n),
                            Document(source=str(path), content_hash="", title=path.stem, id=n), 1.0))
    return hits


def measure(model: str, runtime: str, new_tokens: int, repeats: int, cache: str) -> dict:
    """Runs in its own process: load, then answer the prompt ``repeats`` times (best run kept)."""
    from retrieval.llm import load_llm
    from retrieval.prompt import build_prompt
    from zhiku.settings import Settings

    settings = Settings(llm="local", llm_model=model, llm_runtime=runtime, llm_max_new_tokens=new_tokens,
                        llm_timeout_s=900, model_cache=cache)
    load_llm(settings)  # conversions (cached) are not part of the load time
    started = time.perf_counter()
    llm = load_llm(settings)
    load_s = time.perf_counter() - started
    prompt = build_prompt(QUESTION, sample_hits(), PROMPT_TOKENS, llm.count_tokens)
    text = llm._template(prompt.messages)
    runs = []
    for _ in range(repeats):
        begun = time.perf_counter()
        first = last = None
        reply = ""
        for response in llm.stream_complete(text, formatted=True):
            if response.delta:
                last = time.perf_counter()
                first = first or last
                reply += response.delta
        tokens = llm.count_tokens(reply)
        runs.append({
            "first_token_s": round(first - begun, 2) if first else None,
            "tokens": tokens,
            "tokens_per_s": round((tokens - 1) / (last - first), 2) if first and last and last > first else None,
        })
    best = min(runs, key=lambda r: r["first_token_s"] or 1e9)
    return {
        "model": model, "runtime": runtime, "prompt_tokens": llm.count_tokens(text), "load_s": round(load_s, 1),
        **best, "reply": reply[:300], "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def installed_models() -> list[str]:
    from retrieval.local_models import PACKAGED_MODELS, installed

    return [name for name in ("smollm2", "qwen0.5b", "qwen1.5b") if installed(PACKAGED_MODELS[name])]


def in_process(model: str, runtime: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--one", model, runtime, "--new-tokens", str(args.new_tokens),
               "--repeats", str(args.repeats), "--cache", args.cache]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"model": model, "runtime": runtime, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def target_rows(rows: list[dict]) -> list[tuple[str, str, str]]:
    """(target, measured, met) for every target whose runs are in ``rows``."""
    found = {(r["model"], r["runtime"]): r for r in rows if "error" not in r}
    out = []
    for model, runtime, figure, comparison, bound in TARGETS:
        value = found.get((model, runtime), {}).get(figure)
        if value is not None:
            met = value < bound if comparison == "<" else value >= bound
            out.append((f"{model} {runtime} {figure} {comparison} {bound:g}", f"{value:g}", "yes" if met else "no"))
    for model in sorted({m for m, _ in found}):
        base, fast = found.get((model, "transformers")), found.get((model, "ctranslate2"))
        if base and fast and base.get("tokens_per_s") and fast.get("tokens_per_s"):
            ratio = fast["tokens_per_s"] / base["tokens_per_s"]
            out.append((f"{model} CT2 int8 ≥ {SPEEDUP_TARGET:g}x transformers float32 tokens/s", f"{ratio:.1f}x",
                        "yes" if ratio >= SPEEDUP_TARGET else "no"))
    return out


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Local generation: transformers float32 vs CTranslate2 int8",
        "",
        f"{meta['machine']}; {meta['cores']} cores; prompt ≈{PROMPT_TOKENS} tokens (the product's grounded prompt "
        f"over sample-corpus passages), greedy, up to {meta['new_tokens']} new tokens; best of {meta['repeats']}. "
        f"{meta['note']}",
        "",
        "| model | runtime | prompt tokens | load s | first token s | tokens | tokens/s | peak RSS MiB | CT2 speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = {r["model"]: r for r in rows if r.get("runtime") == "transformers" and "error" not in r}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['runtime']} | failed: {' '.join(r['error'])} | | | | | | |")
            continue
        ref = base.get(r["model"])
        speedup = ""
        if r["runtime"] == "ctranslate2" and ref and ref.get("tokens_per_s") and r.get("tokens_per_s"):
            speedup = f"{r['tokens_per_s'] / ref['tokens_per_s']:.1f}x"
        lines.append(f"| {r['model']} | {r['runtime']} | {r['prompt_tokens']} | {r['load_s']} | {r['first_token_s']} "
                     f"| {r['tokens']} | {r['tokens_per_s']} | {r['peak_rss_mib']} | {speedup} |")
    lines += ["", "Targets (set for a quiet 2-core machine: see the note on load above):", "",
              "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {ok} |" for t, m, ok in target_rows(rows)]
    lines += ["", "Replies (first 300 characters):", ""]
    lines += [f"- {r['model']} / {r['runtime']}: {r.get('reply', '')!r}" for r in rows if "error" not in r]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="default: every installed packaged model")
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "zhiku" / "models"))
    parser.add_argument("--note", default="", help="a line about the machine's load during the run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "RUNTIME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.new_tokens, args.repeats, args.cache)))
        return
    rows = []
    for model in args.models or installed_models():
        for runtime in RUNTIMES:
            rows.append(in_process(model, runtime, args))
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "new_tokens": args.new_tokens, "repeats": args.repeats, "note": args.note}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "llm.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, ensure_ascii=False))
    (args.out / "llm.md").write_text(markdown(rows, meta), encoding="utf-8")
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
