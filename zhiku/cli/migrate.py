"""``zhiku migrate --from DIR --to postgresql://…``: copy a folder knowledge base into PostgreSQL."""
from __future__ import annotations

import argparse
from pathlib import Path

from zhiku.cli.common import OK, emit


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate", help="copy a folder knowledge base into an empty PostgreSQL database (the shared store)")
    parser.add_argument("--from", dest="source", metavar="DIR", required=True, type=Path,
                        help="the knowledge base folder to copy (left as it is)")
    parser.add_argument("--to", dest="target", metavar="URI", required=True,
                        help="postgresql://USER:PASSWORD@HOST/DB: an empty database with pgvector available")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from zhiku.migrate import migrate

    with tqdm(desc="migrate", unit="row", disable=args.json, dynamic_ncols=True) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = migrate(args.source, args.target, progress)
    counts = ", ".join(f"{n} {table}" for table, n in report.counts.items())
    emit(report.to_json(), args.json,
         f"copied {counts} from {report.source} to {report.target} in {report.seconds:.1f} s\n"
         f"use it with: store = \"{report.target}\" in zhiku.toml, or ZHIKU_STORE (with the password)")
    return OK
