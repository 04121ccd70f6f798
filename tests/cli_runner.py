"""Run the ``zhiku`` command in-process, as the CLI tests of several packages do."""
from __future__ import annotations

import io
import sys

import pytest

from zhiku.cli import main


def run_zhiku(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
              stdin: str = "") -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``zhiku ARGS`` with ``stdin`` as standard input."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
