"""The report: machine facts, the command, and a results table per database, as Markdown and JSON.

BENCHMARKS.md keeps hand-written sections (findings, fixes): only the part between the two markers below is
rewritten by a run.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from bench.results import Measurement

START = "<!-- bench:results:start (written by scripts/bench; edit outside these markers) -->"
END = "<!-- bench:results:end -->"


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": memory,
            "os": f"{platform.system()} {platform.release()}", "python": sys.version.split()[0]}


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "req/s" or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _met(m: Measurement) -> str:
    return "-" if m.met is None else ("yes" if m.met else "**no**")


def table(rows: list[Measurement]) -> str:
    lines = ["| path | case | unit | baseline | ours | ratio | goal | met? | notes |",
             "| --- | --- | --- | ---: | ---: | ---: | --- | --- | --- |"]
    for m in rows:
        ratio = f"{m.ratio:.2f}x" if m.ratio is not None else "-"
        lines.append(f"| {m.path} | {m.case} | {m.unit} | {_number(m.baseline, m.unit)} | "
                     f"{_number(m.ours, m.unit)} | {ratio} | {m.goal} | {_met(m)} | {m.note} |")
    return "\n".join(lines)


def markdown(meta: dict[str, Any], rows: list[Measurement], failures: dict[str, str]) -> str:
    facts = meta["machine"]
    out = [
        f"Run {meta['date']} with `{meta['command']}` ({meta['mode']} sizes, {meta['seconds']:.0f} s).",
        "",
        f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory']}, {facts['os']}, "
        f"Python {facts['python']}; databases: {', '.join(meta['databases']) or 'none'}; "
        f"app server: {meta['server']}.",
        "",
        "The ratio is always *ours' cost / the baseline's cost* (for rates: baseline / ours), so 1.00x means "
        "no overhead and higher is worse.",
    ]
    for db in [*meta["database_names"], "-"]:
        subset = [m for m in rows if m.db == db]
        if not subset:
            continue
        title = {"sqlite": "SQLite", "postgres": "PostgreSQL", "-": "No database (cold start)"}.get(db, db)
        out += ["", f"### {title}", "", table(subset)]
    if failures:
        out += ["", "### Benchmarks that did not complete", ""]
        out += [f"- {name}: {reason}" for name, reason in failures.items()]
    met = [m for m in rows if m.met is not None]
    missed = [m for m in met if not m.met]
    out += ["", f"Goals: {len(met) - len(missed)} of {len(met)} rows met."]
    return "\n".join(out)


def write_markdown(path: Path, body: str) -> None:
    """Replace the generated block of ``path`` (or create the file with one)."""
    block = f"{START}\n{body}\n{END}"
    if path.exists():
        text = path.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            path.write_text(head + block + tail)
            return
        path.write_text(text.rstrip() + "\n\n" + block + "\n")
        return
    path.write_text("# Benchmarks\n\n" + block + "\n")


def write_json(path: Path, meta: dict[str, Any], rows: list[Measurement], failures: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "results": [m.to_dict() for m in rows], "failures": failures},
                               indent=2, default=str))
