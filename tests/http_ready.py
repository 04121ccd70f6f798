"""Wait for a ``zhiku serve`` process started by a test to answer ``/readyz``."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def wait_ready(base: str, server: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    """Return once ``base``/readyz answers 200; fail with the server's log if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert server.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "not ready in time:\n" + log.read_text()
        time.sleep(0.5)
