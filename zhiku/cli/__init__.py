"""The ``zhiku`` command: a thin shell over the library, one module per command group.

Each module exposes ``register(subparsers)`` which adds its sub-commands and sets ``func`` on them;
a command function takes the parsed arguments and returns an exit code (0 ok, 1 failed, 2 usage).
This package is the only place that imports the stage packages (ingest, kg, retrieval, ui, eval, serve, tune).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from zhiku.cli.common import run_command

#: Command-group modules, in the order their commands appear in ``zhiku --help``.
COMMAND_MODULES = (
    "zhiku.cli.ingest",
    "zhiku.cli.graph",
    "zhiku.cli.search",
    "zhiku.cli.ask",
    "zhiku.cli.eval",
    "zhiku.cli.tune",
    "zhiku.cli.ui",
    "zhiku.cli.serve",
    "zhiku.cli.user",
    "zhiku.cli.audit",
    "zhiku.cli.migrate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhiku",
        description="Zhiku (知库): ingest a company's files, then ask questions answered from them with citations.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command group not built yet
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
