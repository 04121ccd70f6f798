"""Parser workers: results in input order, failures as reasons, limits per file, warm reuse."""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from ingest.parse import ParsedFile
from ingest.workers import ParseLimits, ParserPool


def test_results_come_in_input_order_with_failures_as_reasons(tmp_path: Path) -> None:
    names = ["a.md", "b.xyz", "c.md", "d.txt", "e.md"]
    for name in names:
        (tmp_path / name).write_text("" if name == "d.txt" else f"# {name}\n\nThe text of {name}.")
    with ParserPool(2, ParseLimits(timeout_s=60, memory_mb=2048)) as pool:
        results = list(pool.parse([tmp_path / n for n in names]))
    assert [r.title if isinstance(r, ParsedFile) else r for r in results] == [
        "a.md", results[1], "c.md", "the file is empty", "e.md"]
    assert "unsupported file type '.xyz'" in results[1]


def _stage(parsed: ParsedFile, seconds: float) -> str:
    """A worker stage (picklable: a module-level function) that misbehaves on request."""
    if "broken" in parsed.title:
        raise ValueError("no room for it")
    if "slow" in parsed.title:
        time.sleep(60)
    return parsed.title.upper()


def test_a_stage_runs_in_the_worker_on_each_parsed_file_under_a_deadline_of_its_own(tmp_path: Path) -> None:
    names = ["a.md", "broken.md", "b.xyz", "slow.md", "c.md"]
    for name in names:
        (tmp_path / name).write_text(f"The text of {name}.")
    with ParserPool(1, ParseLimits(timeout_s=3, memory_mb=2048), stage=_stage) as pool:
        results = list(pool.parse([tmp_path / n for n in names]))
    assert results[0] == "A" and results[4] == "C"  # the worker after the slow one is a fresh one
    assert results[1] == "cannot prepare the parsed file (ValueError: no room for it)"
    assert "unsupported file type '.xyz'" in results[2]  # a parse failure never reaches the stage
    assert results[3] == "the parser worker timed out after 3 s preparing the parsed file (chunks, triples) (parse_timeout_s)"


@pytest.mark.slow
def test_a_timed_out_file_costs_its_worker_and_the_next_file_gets_a_fresh_one(tmp_path: Path) -> None:
    slow = tmp_path / "slow.txt"
    slow.write_text("Paragraph about the travel policy in plain words. " * 200_000)  # 10 MiB of prose
    good = tmp_path / "good.md"
    good.write_text("# Hotels\n\nHotels are capped at 150 EUR per night.")
    with ParserPool(1, ParseLimits(timeout_s=3, memory_mb=0)) as pool:
        warm = list(pool.parse([good, good]))
        slow_result, after = pool.parse([slow, good])
    assert all(isinstance(r, ParsedFile) for r in warm)
    assert slow_result == "the parser worker timed out after 3 s parsing (parse_timeout_s)"
    assert isinstance(after, ParsedFile) and after.title == "Hotels"


@pytest.mark.slow
def test_a_worker_killed_from_outside_is_reported_as_killed_and_replaced(tmp_path: Path) -> None:
    slow = tmp_path / "slow.txt"
    slow.write_text("Paragraph about the travel policy in plain words. " * 200_000)
    good = tmp_path / "good.md"
    good.write_text("# Hotels\n\nHotels are capped at 150 EUR per night.")

    def kill_workers() -> None:  # what the system's out-of-memory killer does
        for child in multiprocessing.active_children():
            if child.name == "zhiku-parser" and child.pid:
                os.kill(child.pid, signal.SIGKILL)

    with ParserPool(1, ParseLimits(timeout_s=60, memory_mb=0)) as pool:
        list(pool.parse([good]))  # a warm worker exists
        killer = threading.Timer(1.5, kill_workers)
        killer.start()
        killed, after = pool.parse([slow, good])
        killer.join()
    assert killed.startswith("the parser worker was killed (SIGKILL")
    assert isinstance(after, ParsedFile)
