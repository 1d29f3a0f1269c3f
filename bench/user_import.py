"""User import benchmark: rows per second and peak memory of the managed CSV import.

    .venv/bin/python bench/user_import.py [--rows 100000 --rows 200000] [--database-url URL]

For each ``--rows`` (each in a fresh process and a fresh database, so peak memory is that size's
own), a CSV of that many users (about one in fifty rows invalid, so the failures file is exercised too)
is written to a temporary drop folder and imported by ``user_import.import_file``, exactly as the
Managed User Import task does (batches committed, failures CSV spooled, e-mail to the outbox, the
file moved into ``.bak``). Then the same file is imported again: every row is then an update
check ("unchanged"), the steady state of a nightly full export; then once more with every last name
changed ("updated"). The database is a fresh SQLite file unless ``--database-url`` names another
(migrated here; its users and imports, and on PostgreSQL every row that refers to a user, are
deleted first, so only point it at a scratch database).

ParkOps' own CPU time is printed too: on a shared machine the wall-clock rate also measures
everyone else's load, and with PostgreSQL the server's share of the CPU.

Peak memory: the process's peak resident set (``ru_maxrss``) before and after each import (about
110 MiB is the interpreter with SQLAlchemy and the app's modules loaded); the import must not grow
it with the file. ``--trace-allocations`` adds ``tracemalloc``'s peak of Python allocations during
each import, at the cost of a much slower run, so rows/s are measured without it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, select, text  # noqa: E402

from dashboard.db import Database  # noqa: E402
from dashboard.services import email, user_import  # noqa: E402
from models import User, UserImport, UserType  # noqa: E402


def write_file(path: Path, rows: int, surname: str = "Last") -> int:
    """The CSV, written row by row; returns how many rows are invalid on purpose."""
    rng = random.Random(42)
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("student_no,email,first_name,last_name,user_type_id,phone_cell,street,city\r\n")
        for n in range(rows):
            address = f"user{n}@campus.test"
            if rng.random() < 0.02:
                address, bad = f"user{n}-no-at-sign", bad + 1
            kind = "student" if n % 3 else "staff"
            handle.write(
                f"S{n:07d},{address},First{n},{surname}{n},{kind},555-{n % 10000:04d},"
                f"{n} Main St,Townsville\r\n"
            )
    return bad


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(db: Database, path: Path, label: str, trace: bool) -> None:
    rss_before = peak_rss_mib()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = user_import.import_file(
        db.session, path, recipient="registrar@campus.test", backend=email.OutboxBackend(), reply_to=None,
        tz=ZoneInfo("America/Toronto"),
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    traced = ""
    if trace:
        traced = f", Python allocations peak {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB"
        tracemalloc.stop()
    print(
        f"{label}: {result.rows_read} rows in {elapsed:.1f} s = {result.rows_read / elapsed:,.0f} rows/s "
        f"({result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
        f"{result.failed} failed); ParkOps' own CPU {cpu:.1f} s; "
        f"peak RSS {rss_before:.0f} -> {peak_rss_mib():.0f} MiB{traced}",
        flush=True,
    )


def one_size(rows: int, database_url: str | None, trace: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="parkops-bench-import-"))
    db = Database(database_url or f"sqlite:///{work / 'bench.db'}")
    db.upgrade()
    with db.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            # TRUNCATE, not DELETE: a previous size's rows must not stay behind as dead tuples
            # (with autovacuum off or behind, they would slow this size's inserts).
            session.execute(text("TRUNCATE user_imports, users CASCADE"))
        else:
            session.execute(delete(UserImport))
            session.execute(delete(User).where(User.external_id.is_not(None)))
        email.ensure_default_templates(session)
        if not session.scalar(select(UserType).where(UserType.code == "student")):
            session.add_all([UserType(code="student", name="Student"), UserType(code="staff", name="Staff")])
    drop = work / "drop"
    drop.mkdir()
    for label, surname in (
        ("first import (creates)", "Last"),
        ("second import (unchanged)", "Last"),
        ("third import (every last name changed)", "Renamed"),
    ):
        path = drop / "users.csv"
        bad = write_file(path, rows, surname)
        size = path.stat().st_size / 2**20
        print(f"{path.name}: {rows:,} rows ({bad} invalid), {size:.1f} MiB", flush=True)
        run(db, path, label, trace)
    db.dispose()
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append", help="rows per file (repeat for several sizes)")
    parser.add_argument("--database-url")
    parser.add_argument(
        "--trace-allocations",
        action="store_true",
        help="also report tracemalloc's peak of Python allocations (slows the import about threefold)",
    )
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for rows in args.rows or [100_000]:
        child = context.Process(target=one_size, args=(rows, args.database_url, args.trace_allocations))
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit(child.exitcode)


if __name__ == "__main__":
    main()
