"""OCR: character error rate, speed, and retrieval over scans against their born-digital twins, one run.

The scanned documents of ``examples/scans.py`` are written to a temporary folder and read back the way
ingest reads them (PDF pages rendered at 150 dpi by pypdfium2, image frames by Pillow), then:

- **CER** per page and per language: Levenshtein distance / truth length after normalising whitespace
  (runs of spaces and newlines become one space; for Chinese all whitespace is dropped) and table cell
  separators (`` | ``, which the truth and the reader both use, count as a space). Engines side by side:
  the product's reader (``ingest.ocr``), the same without the word-gap repair (RapidOCR's own spaces),
  and Tesseract 5 (``eng`` / ``chi_sim``) when its binary is installed.
- **speed** at 150 dpi: pages/s wall with 1 and 2 parser-like worker processes (each loads its own
  reader, as ingest's workers do), CPU seconds per page, and the load average before and after, since
  other jobs on a shared machine change wall time but hardly CPU time; with ``--baseline REV`` the
  reader of that git revision (``git show REV:ingest/ocr.py``, with its own thread default) is measured
  in the same run, side by side.
- **stages**: seconds per page in detection, orientation, recognition and the rest (word gaps, rows).
- **retrieval**: the sample corpus plus the scans, and the sample corpus plus the twins (the same text
  as ``.txt``), each ingested by the product's pipeline; the questions of ``eval/data/scanned_qa.jsonl``
  scored by the evaluation harness (nDCG@10 and recall@10 per mode), the twins' relevance mapped by name.

    python bench/ocr.py                                    # everything
    python bench/ocr.py --no-retrieval --baseline 0772aa5  # CER and speed, against the reader before the speed-up

Writes ``bench/results/ocr.json`` and ``ocr.md``.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ingest.py would shadow the ingest package when this file runs as a script
sys.path[:] = [str(ROOT), str(ROOT / "examples")] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import scans  # noqa: E402  (examples/scans.py)

QUESTIONS = ROOT / "eval" / "data" / "scanned_qa.jsonl"


def normalise(text: str, language: str) -> str:
    text = text.replace(scans.CELL.strip(), " ")
    return re.sub(r"\s+", "", text) if language == "zh" else re.sub(r"\s+", " ", text).strip()


def cer(read: str, truth: str, language: str) -> float:
    from rapidfuzz.distance import Levenshtein

    a, b = normalise(read, language), normalise(truth, language)
    return Levenshtein.distance(a, b) / max(len(b), 1)


def page_images(path: Path) -> list:
    """The file's pages as ingest renders them (PDF at ``OCR_DPI``; image frames as stored)."""
    from PIL import Image, ImageSequence

    from ingest.parse import OCR_DPI

    if path.suffix == ".pdf":
        import pypdfium2

        document = pypdfium2.PdfDocument(str(path))
        return [page.render(scale=OCR_DPI / 72, grayscale=True).to_pil() for page in document]
    with Image.open(path) as image:
        return [frame.copy() for frame in ImageSequence.Iterator(image)]


def tesseract(image, language: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        image.save(handle.name)
        done = subprocess.run(["tesseract", handle.name, "-", "-l", "chi_sim" if language == "zh" else "eng"],
                              capture_output=True, text=True, env={**os.environ, "OMP_THREAD_LIMIT": "2"})
    return done.stdout


@functools.lru_cache(maxsize=None)
def baseline_reader(revision: str) -> Any:
    """``ingest/ocr.py`` as it was at ``revision``, loaded as a module of its own."""
    source = subprocess.run(["git", "show", f"{revision}:ingest/ocr.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="zhiku-ocr-baseline-")) / "ocr_baseline.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("ocr_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def readers(baseline: str | None) -> dict[str, Any]:
    """The readers to measure by name: the product's and, with ``--baseline``, that revision's."""
    from ingest import ocr

    out = {"zhiku (RapidOCR + word gaps)": ocr}
    if baseline:
        out[f"zhiku at {baseline}"] = baseline_reader(baseline)
    return out


def measure_cer(folder: Path, baseline: str | None) -> list[dict]:
    from ingest import ocr

    engines = {}
    for name, module in readers(baseline).items():
        module.reader()  # loaded before any clock starts
        engines[name] = lambda image, _, module=module: module.read_page(image).text

    def plain(image, _):
        saved, ocr.GAP_RATIO = ocr.GAP_RATIO, float("inf")
        try:
            return ocr.read_page(image).text
        finally:
            ocr.GAP_RATIO = saved

    engines["RapidOCR spaces only"] = plain  # the product's reader without the word-gap repair
    if shutil.which("tesseract"):
        engines["Tesseract 5"] = tesseract
    rows = []
    for relative, doc in scans.SCANS.items():
        images = page_images(folder / relative)
        for number, (page, image) in enumerate(zip(doc.pages, images), start=1):
            if page.digital:
                continue
            for engine, read in engines.items():
                start = time.perf_counter()
                text = read(image, page.language)
                seconds = time.perf_counter() - start
                rows.append({"file": relative, "page": number, "language": page.language, "style": page.style,
                             "engine": engine, "cer": round(cer(text, page.text, page.language), 4),
                             "seconds": round(seconds, 2), "pixels": f"{image.width}x{image.height}"})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    return rows


def scanned_images(folder: Path) -> list:
    return [image for relative, doc in scans.SCANS.items()
            for page, image in zip(doc.pages, page_images(folder / relative)) if not page.digital]


def _load_worker(name: str, baseline: str | None) -> None:
    """Load the reader in this worker process before any clock starts (each worker holds its own,
    as ingest's parser workers do; ``readers`` and ``reader`` are cached per process)."""
    readers(baseline)[name].reader()


def _timed_read(name: str, baseline: str | None, image) -> float:
    start = time.process_time()
    readers(baseline)[name].read_page(image)
    return time.process_time() - start


def measure_speed(folder: Path, baseline: str | None, rounds: int) -> list[dict]:
    """Pages/s wall and CPU s/page for each reader with 1 and 2 worker processes."""
    images = scanned_images(folder) * rounds
    rows = []
    for name in readers(baseline):
        for workers in (1, 2):
            context = multiprocessing.get_context("spawn")
            with context.Pool(workers, initializer=_load_worker, initargs=(name, baseline)) as pool:
                tasks = [(name, baseline, image) for image in images]
                pool.starmap(_timed_read, tasks[:workers])  # warm: first inference allocates
                load = os.getloadavg()[0]
                start = time.perf_counter()
                cpu = pool.starmap(_timed_read, tasks, chunksize=1)
                wall = time.perf_counter() - start
            rows.append({"reader": name, "workers": workers, "pages": len(images),
                         "pages_per_s": round(len(images) / wall, 2), "cpu_s_per_page": round(sum(cpu) / len(images), 2),
                         "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1)})
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    return rows


def measure_stages(folder: Path) -> dict[str, float]:
    """Seconds per page spent in each engine stage of the product's reader (one thread)."""
    from ingest import ocr

    engine, spent = ocr.reader(), {"detection": 0.0, "orientation": 0.0, "recognition": 0.0}
    stages = {"detection": "text_det", "orientation": "text_cls", "recognition": "text_rec"}
    originals = {attribute: getattr(engine, attribute) for attribute in stages.values()}
    for stage, attribute in stages.items():
        def timed(*args, call=originals[attribute], stage=stage):
            start = time.perf_counter()
            try:
                return call(*args)
            finally:
                spent[stage] += time.perf_counter() - start
        setattr(engine, attribute, timed)
    images = scanned_images(folder)
    start = time.perf_counter()
    for image in images:
        ocr.read_page(image)
    total = time.perf_counter() - start
    for attribute, call in originals.items():
        setattr(engine, attribute, call)
    out = {stage: seconds / len(images) for stage, seconds in spent.items()}
    out["the rest (scaling, crops, word gaps, rows)"] = total / len(images) - sum(out.values())
    return {stage: round(seconds, 3) for stage, seconds in out.items()}


def measure_retrieval(folder: Path, corpus: Path) -> dict:
    from eval.runner import RunConfig, run
    from zhiku.settings import Settings

    sets = {"scanned": folder / "with-scans", "born digital": folder / "with-twins"}
    for target in sets.values():
        shutil.copytree(corpus, target)
    scans.build(sets["scanned"])
    scans.build_twins(sets["born digital"])
    twins_qa = folder / "scanned_qa_twins.jsonl"
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    twins_qa.write_text("".join(json.dumps({**r, "relevant": [scans.twin_of(x) for x in r["relevant"]]},
                                           ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = {}
    for name, corpus_dir in sets.items():
        settings = Settings(kb=folder / f"kb-{name}", extractor="none")
        config = RunConfig(dataset=QUESTIONS if name == "scanned" else twins_qa, modes=["keyword", "vector", "hybrid"],
                           ks=[10], out=folder / f"report-{name}", corpus=corpus_dir, cache_dir=folder / "cache",
                           progress=False)
        start = time.perf_counter()
        result, _, _ = run(config, settings)
        out[name] = {"ingest_and_eval_s": round(time.perf_counter() - start, 1), "modes": {
            r.mode: {k: round(v.mean, 3) for k, v in r.doc.items() if k in ("ndcg@10", "recall@10")}
            for r in result.modes if r.skipped is None}}
        print(name, json.dumps(out[name]), flush=True)
    return out


def markdown(rows: list[dict], speed: list[dict], stages: dict[str, float], retrieval: dict | None,
             meta: dict) -> str:
    lines = ["# OCR: scanned pages read back against their exact text", "",
             f"Machine: {meta['machine']}. {meta['note']}", "",
             "## Character error rate (lower is better)", "",
             "| engine | English CER | Chinese CER | s / page (mean) |", "|---|---|---|---|"]
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    for engine in engines:
        mine = [r for r in rows if r["engine"] == engine]
        by = {lang: [r for r in mine if r["language"] == lang] for lang in ("en", "zh")}
        mean = {lang: sum(r["cer"] for r in v) / len(v) if v else float("nan") for lang, v in by.items()}
        seconds = sum(r["seconds"] for r in mine) / len(mine)
        lines.append(f"| {engine} | {mean['en']:.1%} | {mean['zh']:.1%} | {seconds:.1f} |")
    lines += ["", "Per page:", "", "| file | page | style | " + " | ".join(engines) + " |",
              "|---|---|---|" + "---|" * len(engines)]
    pages = list(dict.fromkeys((r["file"], r["page"], r["style"]) for r in rows))
    for file, page, style in pages:
        cells = [next(f"{r['cer']:.1%} ({r['seconds']:.1f} s)" for r in rows
                      if (r["file"], r["page"], r["engine"]) == (file, page, e)) for e in engines]
        lines.append(f"| {file} | {page} | {style} | " + " | ".join(cells) + " |")
    lines += ["", "## Speed (150 dpi; A4 pages 1240x1754 or smaller)", "",
              "Each worker is a process with its own reader, as ingest's parser workers are. CPU s/page is "
              "the time a page keeps one core busy: on a shared machine wall time depends on the other jobs "
              "(load average shown), CPU time much less.", "",
              "| reader | workers | pages/s (wall) | CPU s / page | load before → after |", "|---|---|---|---|---|"]
    for r in speed:
        lines.append(f"| {r['reader']} | {r['workers']} | {r['pages_per_s']:.2f} | {r['cpu_s_per_page']:.2f} | "
                     f"{r['load_before']} → {r['load_after']} |")
    lines += ["", "Where a page's time goes (product's reader, one thread, seconds per page):", "",
              "| stage | s / page |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.3f} |" for stage, seconds in stages.items()]
    lines.append("")
    if retrieval:
        lines += ["## Retrieval: questions about scanned documents (eval/data/scanned_qa.jsonl)", "",
                  "Sample corpus plus the scans vs the sample corpus plus their born-digital twins "
                  "(triple extractor off in both).", "",
                  "| mode | nDCG@10 scanned | nDCG@10 born digital | difference | recall@10 scanned | recall@10 digital |",
                  "|---|---|---|---|---|---|"]
        for mode, scanned in retrieval["scanned"]["modes"].items():
            digital = retrieval["born digital"]["modes"].get(mode, {})
            lines.append(f"| {mode} | {scanned['ndcg@10']:.3f} | {digital.get('ndcg@10', float('nan')):.3f} | "
                         f"{scanned['ndcg@10'] - digital.get('ndcg@10', float('nan')):+.3f} | "
                         f"{scanned['recall@10']:.3f} | {digital.get('recall@10', float('nan')):.3f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-retrieval", action="store_true", help="CER and speed only")
    parser.add_argument("--note", default="", help="a line about the machine's load, for the report")
    parser.add_argument("--baseline", metavar="REV", help="also measure ingest/ocr.py as of this git revision")
    parser.add_argument("--rounds", type=int, default=2, help="times each scanned page is read in the speed runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "threads": os.environ.get("ZHIKU_OCR_THREADS", "each reader's default"), "note": args.note,
            "baseline": args.baseline}
    with tempfile.TemporaryDirectory(prefix="zhiku-bench-ocr-") as tmp:
        folder = Path(tmp)
        scans.build(folder / "scans-only")
        rows = measure_cer(folder / "scans-only", args.baseline)
        speed = measure_speed(folder / "scans-only", args.baseline, args.rounds)
        stages = measure_stages(folder / "scans-only")
        retrieval = None
        if not args.no_retrieval:
            corpus = folder / "corpus"
            subprocess.run([sys.executable, str(ROOT / "examples" / "make_corpus.py"), str(corpus)], check=True,
                           capture_output=True)
            retrieval = measure_retrieval(folder, corpus)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ocr.json").write_text(json.dumps({"meta": meta, "pages": rows, "speed": speed, "stages": stages,
                                                  "retrieval": retrieval}, indent=2,
                                                  ensure_ascii=False), encoding="utf-8")
    report = markdown(rows, speed, stages, retrieval, meta)
    (args.out / "ocr.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
