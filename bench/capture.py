"""Capture speed against the peers (issue 8): the driver.

::

    bench/run                                   # installs the peers, then runs this
    bench/.venv/bin/python bench/capture.py --repetitions 3 --workloads a,d --dialects postgresql
    bench/run --against 2731fd9 --variants baseline,auditkeeper --workloads a,d


Starts one throw-away PostgreSQL cluster (fsync on) unless ``--pg-url`` names a server,
then runs every measurement (variant x workload x dialect) ``--repetitions`` times, each
in a fresh process (``capture_worker.py``) on a fresh database, in a shuffled order
within each repetition. Prints one Markdown table of medians with min-max, ratios to
the no-audit baseline of the same run, microseconds added per audited row, audit
statements per flush and bytes stored per audit row, then the issue's targets.

``--against`` adds auditkeeper as another version of it has it (a git revision of this
repository, or a folder holding an ``auditkeeper`` package), measured in the same
interleaved run: a change is judged against the code before it, side by side, on this
noisy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
if str(_ROOT) not in sys.path:  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(_ROOT))

from bench.capture_worker import WORKLOADS, describe  # noqa: E402
from bench.models import LABELS, PEERS, POSTGRESQL_ONLY, VARIANTS  # noqa: E402
from bench.servers import fresh_database, postgresql_server  # noqa: E402

WORKER = _HERE / "capture_worker.py"
DIALECTS = ("postgresql", "sqlite")
DIALECT_LABELS = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
PEER_MODULES = {"continuum": "sqlalchemy_continuum", "pgaudit": "postgresql_audit"}

AGAINST = "against"
"""The variant of ``--against``: auditkeeper from another version of its source."""

TARGETS = {"a": 1.3, "b": 1.5, "c": 2.0, "d": 1.4, "e": 2.0}
"""The issue's ceilings for auditkeeper's median / the baseline median, on PostgreSQL."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Stopped by a signal (kill, a closed terminal), unwind as on Ctrl-C: the throw-away
    # cluster is stopped and its folder removed, the running worker killed.
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _unwind)
    if args.from_json:
        document = json.loads(Path(args.from_json).read_text())
        print(render(document["meta"], document["results"]))
        return 0
    workloads = _choose(args.workloads, WORKLOADS, "workload")
    dialects = _choose(args.dialects, DIALECTS, "dialect")
    variants = _choose(args.variants, VARIANTS, "variant")
    missing = [
        v for v in variants if v in PEERS and importlib.util.find_spec(PEER_MODULES[v]) is None
    ]
    if missing:
        print(
            f"{', '.join(LABELS[v] for v in missing)} not installed in {sys.prefix}: run "
            "bench/run (it installs the peers into bench/.venv), or pass --variants",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="auditkeeper-bench-")))
        other = other_source(args.against, folder) if args.against else None
        server = stack.enter_context(_server(args.pg_url if "postgresql" in dialects else "-"))
        meta = environment(server, args)
        if other is not None:
            revision = None if Path(args.against).is_dir() else args.against
            meta["against"] = {"given": args.against, "code": code_version(other, revision)}
            variants = [*variants, AGAINST]
        jobs = plan(args.repetitions, dialects, workloads, variants, seed=args.seed)
        results = []
        for number, (repetition, dialect, workload, variant) in enumerate(jobs, 1):
            result = run_job(
                dialect,
                workload,
                variant,
                server,
                folder,
                args.rows,
                args.batch,
                source=other if variant == AGAINST else None,
            )
            result["repetition"] = repetition
            results.append(result)
            _progress(number, len(jobs), result, started)
        meta["duration_s"] = round(time.monotonic() - started)
        if code_version() != meta["code"]:
            meta["code_changed"] = code_version()
        if args.json:
            Path(args.json).write_text(
                json.dumps({"meta": meta, "results": results}, indent=1) + "\n"
            )
        print(render(meta, results))
        for workload in _choose(args.profile, WORKLOADS, "workload") if args.profile else []:
            print(profile(workload, dialects[0], server, folder, args))
        if args.server_stats:
            workloads = _choose(args.server_stats, WORKLOADS, "workload")
            print(server_stats(workloads, folder, args))
    failed = [r for r in results if "error" in r]
    return 1 if failed else 0


def _unwind(number: int, frame: Any) -> None:
    raise SystemExit(128 + number)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Capture speed of auditkeeper against the peers (issue 8).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads:\n"
        + "\n".join(f"  {key}  {text}" for key, text in WORKLOADS.items())
        + "\n\nvariants: "
        + ", ".join(VARIANTS),
    )
    parser.add_argument("--repetitions", type=int, default=5, metavar="N")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="e.g. a,b (default all)")
    parser.add_argument("--dialects", default=",".join(DIALECTS), help="postgresql,sqlite")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="default all four")
    parser.add_argument("--rows", type=int, default=10_000, help="N (default 10,000)")
    parser.add_argument("--batch", type=int, default=100, help="rows per transaction")
    parser.add_argument("--seed", type=int, default=8, help="of the shuffled order")
    parser.add_argument(
        "--pg-url", help="a PostgreSQL server to use (needs CREATE DATABASE and superuser)"
    )
    parser.add_argument(
        "--against",
        metavar="REVISION|FOLDER",
        help="also run auditkeeper from another version of its source, interleaved with "
        "this one: a git revision of this repository, or a folder holding its auditkeeper "
        "package (a src folder, or a checkout)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every measurement here")
    parser.add_argument("--from-json", metavar="PATH", help="print the table of a saved run")
    parser.add_argument(
        "--profile",
        metavar="WORKLOADS",
        help="after the table, profile auditkeeper on these workloads with pyinstrument",
    )
    parser.add_argument("--profile-dir", metavar="DIR", help="keep the profiles' text here")
    parser.add_argument(
        "--server-stats",
        metavar="WORKLOADS",
        help="after the table, run auditkeeper once on these workloads on a PostgreSQL "
        "cluster with pg_stat_statements, and print the server's time per statement "
        "(nested ones included) and per function",
    )
    return parser


def _choose(given: str, known: Any, what: str) -> list[str]:
    chosen = [item.strip() for item in given.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in known]
    if unknown or not chosen:
        raise SystemExit(f"unknown {what} {unknown or given!r}; choose from {', '.join(known)}")
    return [item for item in known if item in chosen]


def plan(
    repetitions: int,
    dialects: list[str],
    workloads: list[str],
    variants: list[str],
    *,
    seed: int,
) -> list[tuple[int, str, str, str]]:
    """Every measurement of every repetition; each repetition in its own shuffled order."""
    jobs = []
    for repetition in range(1, repetitions + 1):
        batch = [
            (repetition, dialect, workload, variant)
            for dialect in dialects
            for workload in workloads
            for variant in variants
            if not (dialect != "postgresql" and variant in POSTGRESQL_ONLY)
        ]
        random.Random(seed * 1000 + repetition).shuffle(batch)
        jobs.extend(batch)
    return jobs


# -- running ----------------------------------------------------------------------------


@contextlib.contextmanager
def _server(pg_url: str | None) -> Iterator[str | None]:
    """The PostgreSQL server's URL: the given one, or a throw-away cluster with fsync on
    ("-" when PostgreSQL is not measured)."""
    if pg_url == "-":
        yield None
    else:
        with postgresql_server(pg_url, fsync=True) as url:
            yield url


def run_job(
    dialect: str,
    workload: str,
    variant: str,
    server: str | None,
    folder: Path,
    rows: int,
    batch: int,
    profile_path: Path | None = None,
    *,
    with_server_stats: bool = False,
    source: Path | None = None,
) -> dict[str, Any]:
    """One measurement in a fresh process on a fresh database; ``source``: the folder
    to import auditkeeper from (the ``--against`` variant)."""
    environ = None
    if source is not None:
        environ = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
    with _fresh_database(dialect, server, folder) as url:
        command = [
            sys.executable,
            str(WORKER),
            f"--variant={'auditkeeper' if variant == AGAINST else variant}",
            f"--workload={workload}",
            f"--url={url}",
            f"--rows={rows}",
            f"--batch={batch}",
        ]
        if profile_path is not None:
            command.append(f"--profile={profile_path}")
        if with_server_stats:
            command.append("--server-stats")
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=1800, check=False, env=environ
            )
        except subprocess.TimeoutExpired:
            return _failure(dialect, workload, variant, "timed out after 1800 s")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return _failure(dialect, workload, variant, done.stderr.strip()[-2000:])
    result: dict[str, Any] = json.loads(lines[-1])
    if source is not None:
        imported = result.get("auditkeeper_source")
        if imported != str(source.resolve()):
            return _failure(
                dialect, workload, variant, f"auditkeeper came from {imported}, not {source}"
            )
        result["variant"] = AGAINST
    return result


def other_source(given: str, folder: Path) -> Path:
    """The folder holding the ``auditkeeper`` package of ``--against``: ``given`` itself
    or its ``src``, or else the ``src`` of the git revision ``given``, extracted into
    ``folder``."""
    for candidate in (Path(given), Path(given) / "src"):
        if (candidate / "auditkeeper" / "__init__.py").is_file():
            return candidate.resolve()
    done = subprocess.run(
        ["git", "-C", str(_ROOT), "archive", "--format=tar", given, "src"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise SystemExit(
            f"--against {given!r} is neither a folder holding an auditkeeper package nor a "
            f"revision of {_ROOT} that git can archive ({reason[-1]})"
        )
    target = folder / "against"
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(target, filter="data")
    return (target / "src").resolve()


def _failure(dialect: str, workload: str, variant: str, error: str) -> dict[str, Any]:
    return {"dialect": dialect, "workload": workload, "variant": variant, "error": error}


@contextlib.contextmanager
def _fresh_database(dialect: str, server: str | None, folder: Path) -> Iterator[str]:
    if dialect == "sqlite":
        path = folder / f"{uuid.uuid4().hex}.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    assert server is not None
    with fresh_database(server, "bench") as url:
        yield url


def _progress(number: int, total: int, result: dict[str, Any], started: float) -> None:
    elapsed = time.monotonic() - started
    left = elapsed / number * (total - number)
    outcome = (
        "FAILED: " + result["error"].splitlines()[-1][:200]
        if "error" in result
        else f"{result['total_ms']:9.0f} ms"
    )
    print(
        f"[{number:3}/{total}] rep {result.get('repetition', '?')} "
        f"{result['dialect']:10} ({result['workload']}) {result['variant']:11} {outcome}"
        f"   ({elapsed / 60:.1f} min, about {left / 60:.0f} min left)",
        file=sys.stderr,
        flush=True,
    )


def profile(
    workload: str, dialect: str, server: str | None, folder: Path, args: argparse.Namespace
) -> str:
    """auditkeeper on one workload under pyinstrument, as text."""
    target = Path(args.profile_dir or folder) / f"profile-auditkeeper-{dialect}-{workload}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    result = run_job(
        dialect, workload, "auditkeeper", server, folder, args.rows, args.batch, target
    )
    if "error" in result:
        return f"\nprofile of ({workload}) failed: {result['error']}\n"
    where = f" (kept in {target})" if args.profile_dir else ""
    return (
        f"\n### pyinstrument: auditkeeper, {DIALECT_LABELS[dialect]}, workload ({workload})"
        f"{where}\n\n{result['total_ms']:.0f} ms under the profiler\n\n```text\n"
        f"{target.read_text().strip()}\n```\n"
    )


def server_stats(workloads: list[str], folder: Path, args: argparse.Namespace) -> str:
    """auditkeeper once per workload on a PostgreSQL cluster of its own that records
    every statement and function (``--pg-url``: that server, which must preload
    pg_stat_statements), as tables of the server's time in the timed part."""
    from bench.capture_worker import SERVER_STATS_SETTINGS
    from tests.pgcluster import throwaway_cluster

    cluster = (
        contextlib.nullcontext(args.pg_url)
        if args.pg_url
        else throwaway_cluster(fsync=True, settings=SERVER_STATS_SETTINGS)
    )
    parts = []
    with cluster as url:
        for workload in workloads:
            result = run_job(
                "postgresql",
                workload,
                "auditkeeper",
                url,
                folder,
                args.rows,
                args.batch,
                with_server_stats=True,
            )
            parts.append(server_stats_tables(workload, result))
    return "".join(parts)


def server_stats_tables(workload: str, result: dict[str, Any]) -> str:
    title = f"\n### Server time: auditkeeper, PostgreSQL, workload ({workload})\n\n"
    if "error" in result:
        return f"{title}failed: {result['error']}\n"
    stats = result["server_stats"]
    changed = result["changed_rows"]
    lines = [
        f"{result['total_ms']:.0f} ms in all (pg_stat_statements and track_functions on); "
        f"{changed:,} changed rows; times are the server's, summed over the timed part.\n",
        _row(["statement", "nested", "calls", "plan ms", "exec ms", "µs per changed row"]),
        _row(["---"] * 6),
    ]
    for row in stats["statements"]:
        spent = row["plan_ms"] + row["exec_ms"]
        lines.append(
            _row(
                [
                    f"`{row['query']}`",
                    "yes" if row["nested"] else "",
                    f"{row['calls']:,}",
                    f"{row['plan_ms']:.1f}",
                    f"{row['exec_ms']:.1f}",
                    f"{spent * 1000 / changed:.1f}",
                ]
            )
        )
    lines += [
        "",
        _row(["function", "calls", "self ms", "total ms", "µs self per call"]),
        _row(["---"] * 5),
    ]
    for row in stats["functions"]:
        calls = row["calls"] or 1
        lines.append(
            _row(
                [
                    f"`{row['function']}`",
                    f"{row['calls']:,}",
                    f"{row['self_ms']:.1f}",
                    f"{row['total_ms']:.1f}",
                    f"{row['self_ms'] * 1000 / calls:.1f}",
                ]
            )
        )
    return title + "\n".join(lines) + "\n"


# -- the machine --------------------------------------------------------------------------


def environment(server: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """What the table was measured on."""
    versions = {}
    for package in (
        "SQLAlchemy",
        "psycopg",
        "orjson",
        "auditkeeper",
        "SQLAlchemy-Continuum",
        "PostgreSQL-Audit",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": code_version(),
        "command": " ".join(["bench/run", *sys.argv[1:]]),
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "memory": _memory(),
        "os": _os(),
        "python": platform.python_version(),
        "versions": versions,
        "sqlite": sqlite3.sqlite_version,
        "repetitions": args.repetitions,
        "rows": args.rows,
        "batch": args.batch,
    }
    if server is not None:
        from sqlalchemy import create_engine, text

        engine = create_engine(server)
        with engine.connect() as connection:
            meta["postgresql"] = connection.execute(text("SHOW server_version")).scalar()
            meta["postgresql_settings"] = {
                name: connection.execute(text(f"SHOW {name}")).scalar()
                for name in ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
            }
        engine.dispose()
    return meta


def code_version(src: Path = _ROOT / "src", revision: str | None = "HEAD") -> str:
    """The commit measured (``revision`` of this repository; None: a folder, outside
    git), and a digest of the auditkeeper package in ``src`` as it was read (the working
    tree may hold uncommitted changes): the same code gives the same digest."""
    digest = hashlib.sha256()
    for path in sorted((src / "auditkeeper").rglob("*.py")):
        name = f"src/{path.relative_to(src).as_posix()}"
        digest.update(name.encode() + b"\0" + path.read_bytes())
    commit = "unknown commit" if revision else "a folder"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "-C", str(_ROOT), "rev-parse", "--short", f"{revision}^{{commit}}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if revision and done.returncode == 0:
            commit = done.stdout.strip()
    return f"{commit}, src digest {digest.hexdigest()[:12]}"


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return "unknown"


def _os() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    return platform.platform()


# -- the table ----------------------------------------------------------------------------


def render(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The Markdown table of a run, with its targets."""
    by_key: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    failures: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for result in results:
        key = (result["dialect"], result["workload"], result["variant"])
        if "error" in result:
            failures[key].append(result["error"])
        else:
            by_key[key].append(result)
    dialects = [d for d in DIALECTS if any(k[0] == d for k in by_key | failures)]
    workloads = [w for w in WORKLOADS if any(k[1] == w for k in by_key | failures)]
    variants = [v for v in (*VARIANTS, AGAINST) if any(k[2] == v for k in by_key | failures)]
    rows, batch = meta.get("rows", 10_000), meta.get("batch", 100)

    lines = [_header(meta), ""]
    lines.append(
        "| dialect | workload | variant | median ms (min-max) | x baseline | write part ms "
        "(x baseline) | µs added per audited row | audit statements per flush | bytes per "
        "audit row | audit rows | peak RSS growth MB |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    summary: dict[tuple[str, str, str], dict[str, Any]] = {}
    for dialect in dialects:
        for workload in workloads:
            base = by_key.get((dialect, workload, "baseline"), [])
            base_total = _median(base, "total_ms")
            base_write = _median(base, "write_ms")
            for variant in variants:
                key = (dialect, workload, variant)
                cells = [DIALECT_LABELS[dialect], f"({workload}) {describe(workload, rows, batch)}"]
                cells.append(_label(variant, meta))
                runs = by_key.get(key, [])
                if dialect != "postgresql" and variant in POSTGRESQL_ONLY:
                    lines.append(_row([*cells, "n/a: PostgreSQL only (triggers)", *[""] * 7]))
                    continue
                if not runs:
                    error = failures.get(key, ["not run"])[0].strip().splitlines() or ["failed"]
                    lines.append(_row([*cells, f"failed: {error[-1][:80]}", *[""] * 7]))
                    continue
                summary[key] = info = _summarise(runs, base_total, base_write)
                audited = variant != "baseline"
                not_audited = audited and info["audit_rows"] == 0
                lines.append(
                    _row(
                        [
                            *cells,
                            _spread(runs, "total_ms"),
                            (
                                "not audited"
                                if not_audited
                                else _ratio(info["ratio"])
                                if audited
                                else "x1.00"
                            ),
                            f"{info['write']:.0f} ({_ratio(info['write_ratio'])})",
                            (
                                ""  # nothing logged, or no baseline in this run
                                if not audited or not_audited or info["added_us_per_row"] is None
                                else f"{info['added_us_per_row']:,.0f}"
                            ),
                            _number(info["per_flush"]) if audited else "",
                            _bytes(info["bytes"]) if audited and not not_audited else "",
                            (
                                f"{info['audit_rows']:,} of {info['changed']:,}"
                                if audited
                                else f"(changes {info['changed']:,})"
                            ),
                            f"{info['rss']:.1f}",
                        ]
                    )
                )
    lines.append("")
    lines.extend(_targets(summary, dialects, workloads, variants))
    lines.extend(_against(summary, dialects, workloads, meta))
    if failures:
        lines.append("")
        lines.append(f"{sum(len(v) for v in failures.values())} measurement(s) failed:")
        for (dialect, workload, variant), errors in sorted(failures.items()):
            last = errors[0].strip().splitlines() or ["?"]
            lines.append(f"- {dialect} ({workload}) {variant}: {last[-1][:300]}")
    return "\n".join(lines)


def _header(meta: dict[str, Any]) -> str:
    versions = meta.get("versions", {})
    pg = meta.get("postgresql")
    settings = meta.get("postgresql_settings", {})
    parts = [
        f"Capture benchmark, {meta.get('date')}: `{meta.get('command')}` "
        f"({meta.get('repetitions')} repetitions, each measurement a fresh process on a fresh "
        f"database, shuffled order; {meta.get('duration_s', '?')} s in all).",
        f"Machine: {meta.get('cpu')}, {meta.get('cores')} cores, {meta.get('memory')}, "
        f"{meta.get('os')}. Python {meta.get('python')}, "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + f", SQLite {meta.get('sqlite')} (file, WAL)"
        + (
            f", PostgreSQL {pg} (throw-away cluster, TCP loopback, "
            + ", ".join(f"{k} {v}" for k, v in settings.items())
            + ")."
            if pg
            else "."
        ),
        f"Code: {meta.get('code', '?')}"
        + (
            f"; against: {meta['against']['given']} ({meta['against']['code']})"
            if "against" in meta
            else ""
        )
        + (
            f". WARNING: auditkeeper's source changed during the run (now {meta['code_changed']})"
            if meta.get("code_changed")
            else ""
        )
        + ".",
        "Times are whole workloads in ms (median, min-max); 'write part' counts only "
        "flush + commit (the bulk statement in (e)); ratios divide medians by the baseline's "
        "median of the same run.",
    ]
    return "\n".join(parts)


def _summarise(
    runs: list[dict[str, Any]], base_total: float | None, base_write: float | None
) -> dict[str, Any]:
    total = _median(runs, "total_ms") or 0.0
    write = _median(runs, "write_ms") or 0.0
    changed = runs[0]["changed_rows"]
    per_flush = [r["audit_statements_per_flush"] for r in runs]
    return {
        "total": total,
        "write": write,
        "ratio": total / base_total if base_total else None,
        "write_ratio": write / base_write if base_write else None,
        "added_us_per_row": (total - base_total) * 1000 / changed if base_total else None,
        "per_flush": statistics.median(p for p in per_flush if p is not None)
        if any(p is not None for p in per_flush)
        else None,
        "per_flush_all": per_flush,
        "bytes": _median(runs, "audit_bytes_per_row"),
        "audit_rows": min(r["audit_rows"] for r in runs),
        "changed": changed,
        "rss": max(r["rss_growth_mb"] for r in runs),
    }


def _targets(
    summary: dict[tuple[str, str, str], dict[str, Any]],
    dialects: list[str],
    workloads: list[str],
    variants: list[str],
) -> list[str]:
    if "auditkeeper" not in variants:
        return []
    lines = ["Targets (auditkeeper):", ""]
    for dialect in dialects:
        for workload in workloads:
            mine = summary.get((dialect, workload, "auditkeeper"))
            if mine is None:
                continue
            verdicts = []
            if dialect == "postgresql" and mine["ratio"] is not None:
                ceiling = TARGETS[workload]
                met = mine["ratio"] <= ceiling
                verdicts.append(
                    f"{_ratio(mine['ratio'])} vs <= x{ceiling:.1f}: {'met' if met else 'MISSED'}"
                )
            verdicts.append(_against_peers(summary, dialect, workload, mine))
            flushes = sorted(set(mine["per_flush_all"]))
            if dialect != "postgresql":
                # The one statement per flush is PostgreSQL's target; SQLite's
                # capture sends its flush mark and takes its triggers' rows besides.
                verdicts.append(f"audit statements per flush {flushes} (no target here)")
            elif flushes == [1]:
                verdicts.append("exactly 1 audit statement per flush")
            else:
                verdicts.append(f"audit statements per flush {flushes}: NOT 1")
            lines.append(f"- {DIALECT_LABELS[dialect]} ({workload}): " + "; ".join(verdicts))
    return lines


def _against_peers(
    summary: dict[tuple[str, str, str], dict[str, Any]],
    dialect: str,
    workload: str,
    mine: dict[str, Any],
) -> str:
    """Whether auditkeeper took less time than each peer that ran and logged this
    workload; a peer that ran without logging it is named as such."""
    verdicts = []
    for peer in PEERS:
        theirs = summary.get((dialect, workload, peer))
        if theirs is None:
            continue
        if theirs["audit_rows"] == 0:
            verdicts.append(f"{LABELS[peer]} does not audit it")
            continue
        faster = mine["total"] < theirs["total"]
        verdicts.append(
            f"{'below' if faster else 'NOT below'} {LABELS[peer]} "
            f"({mine['total']:.0f} vs {theirs['total']:.0f} ms)"
        )
    return "; ".join(verdicts) if verdicts else "no peer in this run"


def _against(
    summary: dict[tuple[str, str, str], dict[str, Any]],
    dialects: list[str],
    workloads: list[str],
    meta: dict[str, Any],
) -> list[str]:
    """This auditkeeper's medians against the other version's (``--against``)."""
    if "against" not in meta:
        return []
    lines = ["", f"This auditkeeper against {_label(AGAINST, meta)} (medians, same run):", ""]
    for dialect in dialects:
        for workload in workloads:
            mine = summary.get((dialect, workload, "auditkeeper"))
            theirs = summary.get((dialect, workload, AGAINST))
            if mine is None or theirs is None or not theirs["total"]:
                continue
            lines.append(
                f"- {DIALECT_LABELS[dialect]} ({workload}): {mine['total']:.0f} against "
                f"{theirs['total']:.0f} ms (x{mine['total'] / theirs['total']:.2f})"
            )
    return lines


def _label(variant: str, meta: dict[str, Any]) -> str:
    if variant == AGAINST:
        return f"auditkeeper at {meta.get('against', {}).get('given', '?')}"
    return LABELS[variant]


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    found = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(found) if found else None


def _spread(runs: list[dict[str, Any]], key: str) -> str:
    found = [r[key] for r in runs]
    return f"{statistics.median(found):.0f} ({min(found):.0f}-{max(found):.0f})"


def _ratio(value: float | None) -> str:
    return "?" if value is None else f"x{value:.2f}"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _bytes(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    sys.exit(main())
