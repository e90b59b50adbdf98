"""``python -m bench [--quick] [--db sqlite,postgres] [--only enqueue,poll,...]``: run the suite.

Timings never fail the run: the exit status is non-zero only when a benchmark could not produce numbers.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench.appserver import ServerOptions
from bench.context import Context, log
from bench.databases import DEFAULT_PG_URL, Database, postgres_database, postgres_unreachable, sqlite_database
from bench.paths import PathSpec, all_paths
from bench.report import machine, markdown, write_json, write_markdown
from bench.results import Measurement
from bench.servers import StandIns
from bench.sizes import DEFAULT, QUICK

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [p.name for p in all_paths()]
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of every benchmark")
    parser.add_argument("--db", default="sqlite,postgres",
                        help="databases to measure, comma-separated (default: sqlite,postgres)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG_URL,
                        help="PostgreSQL server (a schema of its own is created and dropped)")
    parser.add_argument("--only", default="", help=f"benchmarks to run, comma-separated, from: {','.join(names)}")
    parser.add_argument("--report", type=Path, default=None,
                        help="Markdown file to update (default: BENCHMARKS.md, or none with --quick)")
    parser.add_argument("--no-report", action="store_true", help="write no Markdown report")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results as JSON "
                        "(default: bench/results/<time>.json)")
    parser.add_argument("--workers", type=int, default=ServerOptions.workers,
                        help="app server worker processes (default: agentic serve's)")
    parser.add_argument("--threads", type=int, default=ServerOptions.threads, help="threads per worker")
    args = parser.parse_args(argv)
    unknown = set(filter(None, args.only.split(","))) - set(names)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def _databases(args: argparse.Namespace, failures: dict[str, str]) -> Iterator[AbstractContextManager[Database]]:
    for name in filter(None, (n.strip() for n in args.db.split(","))):
        if name == "sqlite":
            yield sqlite_database()
        elif name == "postgres":
            reason = postgres_unreachable(args.pg_url)
            if reason:
                log(f"postgres: skipped, server unreachable ({reason})")
                failures["postgres"] = f"server unreachable: {reason}"
                continue
            yield postgres_database(args.pg_url)
        else:
            raise SystemExit(f"unknown database {name!r} (use sqlite, postgres)")


def _run_path(spec: PathSpec, ctx: Context, rows: list[Measurement], failures: dict[str, str]) -> None:
    key = f"{spec.name} ({ctx.db.name})" if spec.databases else spec.name
    log(f"== {key}: {spec.title}")
    began = time.monotonic()
    try:
        produced = spec.run(ctx)
    except Exception as exc:
        traceback.print_exc()
        failures[key] = f"{type(exc).__name__}: {exc}"
        return
    if not produced:
        failures[key] = "produced no numbers"
    rows.extend(produced)
    log(f"   {key} took {time.monotonic() - began:.1f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else DEFAULT
    selected = [p for p in all_paths() if not args.only or p.name in args.only.split(",")]
    options = ServerOptions(workers=args.workers, threads=args.threads)
    rows: list[Measurement] = []
    failures: dict[str, str] = {}
    versions: list[str] = []
    names: list[str] = []
    began = time.monotonic()
    with ExitStack() as stack:
        stand_ins = stack.enter_context(StandIns.start())
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentic-bench-")))
        no_db = [p for p in selected if not p.databases]
        for database_cm in _databases(args, failures):
            with database_cm as db:
                names.append(db.name)
                versions.append(db.version)
                ctx = Context(sizes=sizes, db=db, stand_ins=stand_ins, workdir=workdir, server_options=options)
                try:
                    for spec in selected:
                        if db.name in spec.databases:
                            _run_path(spec, ctx, rows, failures)
                finally:
                    ctx.close()
        for spec in no_db:
            ctx = Context(sizes=sizes, db=Database("-", "", ""), stand_ins=stand_ins, workdir=workdir)
            _run_path(spec, ctx, rows, failures)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["scripts/bench", shlex.join(sys.argv[1:] if argv is None else argv)]).strip(),
        "mode": "quick" if args.quick else "default",
        "seconds": time.monotonic() - began,
        "machine": machine(),
        "databases": versions,
        "database_names": names,
        "server": options.describe(),
    }
    json_path = args.json or ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    write_json(json_path, meta, rows, failures)
    log(f"results: {json_path}")
    report = None if args.no_report else (args.report or (None if args.quick else ROOT / "BENCHMARKS.md"))
    body = markdown(meta, rows, failures)
    if report is not None:
        write_markdown(report, body)
        log(f"report: {report}")
    print(body)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
