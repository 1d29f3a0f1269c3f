"""The checkout benchmark: purchases per second, and N concurrent buyers for M spaces, on PostgreSQL.

    .venv/bin/python bench/checkout.py [--buyers 200] [--spaces 10] [--purchases 2000] [--workers 16]
                                       [--baseline b8cf1ec | --baseline none]

Every part runs the real checkout (``payments.checkout``: reserve, sandbox charge, settle, receipt
email to the outbox), each buyer on its own thread, connection and transactions, as concurrent
web requests would:

1. throughput: ``--purchases`` temporary permits bought by ``--workers`` threads across 50 lots
   with room to spare (lot locks rarely collide), reported as purchases per second, latency and
   the benchmark process's CPU time per purchase (the threads share one interpreter, so that CPU
   time bounds the rate; unlike the rate, it hardly moves with what else the machine runs). The
   baseline, the code of ``--baseline`` (a git commit: by default the checkout before issue 14's
   rework), runs the same part first, in the same run on the same database, from a ``git
   archive`` of that commit in a child process; ``--baseline none`` skips it;
2. contention: ``--buyers`` threads released at once on one lot with ``--spaces`` spaces; exactly
   ``--spaces`` must be sold and every other buyer told "sold out", with no charge for them;
3. dropped connections: ``--fault-buyers`` guests pay while every connection to the database is
   terminated (``pg_terminate_backend``) every 50 ms for ``--fault-seconds``. Each buyer does what
   the page lets them: Pay again after "being confirmed" or "briefly unavailable", a new form after
   a final answer, until paid; then the Waitlist Offers task's reconciling runs. Every card charged
   must have its active permit and one receipt, none charged twice, and no buyer whose card was
   charged told it was not.

The threads share a pool of ``POOL_SIZE`` connections, as a web process's requests would: buyers
beyond it queue for a connection, then for the lot's row.

The database (default: ``PARKOPS_TEST_DATABASE_URL``, else a local ``parkops_bench``, created if
missing) is emptied and rebuilt: point it at nothing that holds real data.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import func, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.db import Database  # noqa: E402
from dashboard.services import email, payment_providers, payments  # noqa: E402
from dashboard.services.payments import SUCCESS_CARD, ReceiptContext, SandboxProvider  # noqa: E402
from dashboard.services.permits import PermitRequest  # noqa: E402
from dashboard.services.plates import clean_plate  # noqa: E402
from models import (  # noqa: E402
    Lot,
    OutboxMessage,
    Payment,
    PaymentStatus,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    SandboxCharge,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/parkops_bench"
# The last commit before issue 14's rework of the checkout (four commits and 26 statements per
# purchase, each receipt template compiled afresh).
BASELINE = "b8cf1ec"
TARGET_RATE, TARGET_P95_MS = 100, 300  # issue 14: >= 100 purchases/s, p95 <= 300 ms
RECEIPT = ReceiptContext(name="Bench", site_name="Bench", base_url="http://bench", tz=ZoneInfo("UTC"))
POOL_SIZE = 40  # PostgreSQL allows 100 connections by default
CARD = payment_providers.clean_card(SUCCESS_CARD, "12/39", "123", datetime.now(UTC).date())


def prepare(url: str) -> Database:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        if (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)).fetchone()
            is None
        ):
            conn.execute(f'CREATE DATABASE "{parsed.database}"')
    database = Database(url)
    with database.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    database.upgrade()
    with database.session() as session:
        email.ensure_default_templates(session)
    return database


def add_lot(database: Database, name: str, allowance: int) -> tuple[int, int]:
    with database.session() as session:
        lot = Lot(name=name, capacity=allowance, sells_temporary=True)
        session.add(lot)
        session.flush()
        product = PermitProduct(
            lot_id=lot.id, kind=PermitKind.TEMPORARY, name="Hourly", pricing=Pricing.HOURLY, price_cents=250
        )
        session.add(product)
        session.flush()
        return lot.id, product.id


def buy(
    database: Database, provider: SandboxProvider, lot: tuple[int, int], number: int, key: str | None = None
) -> tuple[str, float]:
    now = datetime.now(UTC)
    item = PermitRequest(
        lot_id=lot[0],
        product_id=lot[1],
        plates=(clean_plate(f"B{number:06d}"),),
        valid_from=now,
        valid_to=now + timedelta(hours=1),
        amount_cents=250,
        currency="CAD",
        email=f"buyer{number}@bench.test",
        user_id=None,
    )
    started = time.perf_counter()
    result = payments.checkout(
        database,
        provider,
        items=[item],
        card=CARD,
        idempotency_key=key or uuid.uuid4().hex,
        email_address=item.email or "",
        user_id=None,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        now=now,
    )
    return result.status, (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class Throughput:
    paid: int
    seconds: float
    rate: float  # purchases per second
    p50_ms: float
    p95_ms: float
    cpu_ms: float  # this process's CPU time per purchase

    def line(self) -> str:
        return (
            f"{self.paid} paid in {self.seconds:.1f} s: {self.rate:.0f} purchases/s, per purchase "
            f"p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, {self.cpu_ms:.1f} ms of CPU"
        )


def throughput(database: Database, purchases: int, workers: int) -> Throughput:
    provider = SandboxProvider(database)
    lots = [add_lot(database, f"Throughput Lot {n:02d}", purchases) for n in range(50)]
    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda n: buy(database, provider, lots[n % len(lots)], n), range(purchases)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    latencies = sorted(ms for _status, ms in results)
    paid = sum(status == "paid" for status, _ms in results)
    return Throughput(
        paid,
        elapsed,
        paid / elapsed,
        statistics.median(latencies),
        latencies[int(len(latencies) * 0.95) - 1],
        cpu * 1000 / purchases,
    )


# Run in a child process from the baseline commit's own tree: its bench's throughput part, timed
# as ``throughput`` above times it (the old part prints its figures; CPU is measured around it).
BASELINE_DRIVER = """
import runpy, sys, time
tree, url, purchases, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
bench = runpy.run_path(tree + "/bench/checkout.py")
import dashboard.services.payments
assert dashboard.services.payments.__file__.startswith(tree), "not the baseline's code"
bench["prepare"](url).dispose()
database = bench["Database"](url, pool_size=bench["POOL_SIZE"])
cpu = time.process_time()
bench["throughput"](database, purchases, workers)
print(f"cpu {(time.process_time() - cpu) * 1000 / purchases}")
"""
BASELINE_FIGURES = re.compile(
    r"(?s)(\d+) of \d+ purchases paid .* in ([\d.]+) s.*?(\d+) purchases/s; per purchase "
    r"p50 (\d+) ms, p95 (\d+) ms.*cpu ([\d.]+)"
)


def baseline(url: str, commit: str, purchases: int, workers: int) -> Throughput | None:
    """The throughput part as ``commit``'s code ran it, or None (said why) if it cannot run here
    (no git, or a shallow clone without the commit)."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"throughput, baseline {commit}: not measured, its code is not available here ({exc})")
        return None
    with tempfile.TemporaryDirectory(prefix="parkops-baseline-") as tree:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        run = subprocess.run(
            [sys.executable, "-c", BASELINE_DRIVER, tree, url, str(purchases), str(workers)],
            capture_output=True,
            text=True,
            cwd=tree,
        )
    found = BASELINE_FIGURES.search(run.stdout)
    if run.returncode or found is None:
        print(f"throughput, baseline {commit}: failed\n{run.stdout}{run.stderr}")
        return None
    paid, seconds, rate, p50, p95, cpu = found.groups()
    return Throughput(int(paid), float(seconds), float(rate), float(p50), float(p95), float(cpu))


def contention(database: Database, buyers: int, spaces: int) -> bool:
    provider = SandboxProvider(database)
    lot = add_lot(database, "Contended Lot", spaces)
    gate = threading.Barrier(buyers)
    outcomes: list[str] = []

    def one(number: int) -> None:
        gate.wait()
        outcomes.append(buy(database, provider, lot, 1_000_000 + number)[0])

    threads = [threading.Thread(target=one, args=(n,)) for n in range(buyers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with database.session() as session:
        permits_sold = session.scalar(
            select(func.count(Permit.id)).where(Permit.lot_id == lot[0], Permit.status == "active")
        )
        charged = session.scalar(
            select(func.count(SandboxCharge.id))
            .join(Payment, Payment.idempotency_key == SandboxCharge.idempotency_key)
            .join(Payment.allocations)
            .join(Permit)
            .where(Permit.lot_id == lot[0])
        )
    paid, sold_out = outcomes.count("paid"), outcomes.count("sold_out")
    ok = paid == spaces == permits_sold == charged and sold_out == buyers - spaces
    print(
        f"contention: {buyers} buyers released at once for {spaces} spaces in {elapsed:.1f} s: "
        f"{paid} paid, {sold_out} sold out, {permits_sold} permits active, {charged} cards charged "
        f"-> {'exactly ' + str(spaces) + ' sold' if ok else 'WRONG'}"
    )
    return ok


def dropped_connections(database: Database, buyers: int, seconds: float) -> bool:
    provider = SandboxProvider(database)
    lot = add_lot(database, "Unreliable Lot", buyers)
    admin_url = database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    stop = threading.Event()
    killed: list[int] = []
    told: list[tuple[int, str, str]] = []  # buyer, key, what the buyer was told
    with database.session() as session:
        receipts_before = session.scalar(select(func.count(OutboxMessage.id)))

    def kill() -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            while not stop.is_set():
                pids = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ).fetchall()
                for (pid,) in pids:
                    if admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]:
                        killed.append(pid)
                stop.wait(0.05)

    def one(number: int) -> None:
        form, deadline = 1, time.monotonic() + 180
        while time.monotonic() < deadline:
            key = f"fault-{number}-{form}"
            try:
                status = buy(database, provider, lot, 2_000_000 + number, key)[0]
            except Exception as exc:  # noqa: BLE001 (what a buyer would get: a 500)
                status = f"error: {type(exc).__name__}"
            told.append((number, key, status))
            if status == "paid":
                return
            if status in ("declined", "failed") or status.startswith("error"):
                form += 1  # a final answer (or a crash): the buyer starts a new form
            else:
                time.sleep(0.05)  # "being confirmed" or "briefly unavailable": Pay again shortly

    killer = threading.Thread(target=kill)
    threads = [threading.Thread(target=one, args=(n,)) for n in range(buyers)]
    started = time.perf_counter()
    logging.disable(logging.ERROR)  # each dropped connection is logged; the figures are below
    killer.start()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    killer.join()
    for thread in threads:
        thread.join()
    logging.disable(logging.NOTSET)
    elapsed = time.perf_counter() - started
    payments.reconcile_pending(
        database,
        datetime.now(UTC) + payments.ABANDONED_AFTER,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
    )
    with database.session() as session:
        charged = {
            c.idempotency_key
            for c in session.scalars(
                select(SandboxCharge).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
            )
            if c.idempotency_key.startswith("fault-")
        }
        orphaned = 0
        for payment in session.scalars(select(Payment).where(Payment.idempotency_key.in_(charged))):
            statuses = {session.get(Permit, a.permit_id).status for a in payment.allocations}
            orphaned += payment.status != PaymentStatus.SUCCEEDED or statuses != {PermitStatus.ACTIVE}
        receipts = session.scalar(select(func.count(OutboxMessage.id))) - receipts_before
    per_buyer = [key.split("-")[1] for key in charged]
    twice = len(per_buyer) - len(set(per_buyer))
    lied = sum(1 for _n, key, status in told if key in charged and status in ("declined", "failed"))
    crashed = sum(1 for _n, _key, status in told if status.startswith("error"))
    paid = len({n for n, _key, status in told if status == "paid"})
    counts = {s: sum(1 for *_x, t in told if t == s) for s in ("in_progress", "busy", "failed")}
    ok = paid == buyers == len(charged) == receipts and not (orphaned or twice or lied or crashed)
    print(
        f"dropped connections: {buyers} buyers while {len(killed)} connections were terminated in "
        f"{seconds:.0f} s; all done in {elapsed:.1f} s: {paid} paid after {len(told)} attempts "
        f"({counts['in_progress']} told 'being confirmed', {counts['busy']} 'briefly unavailable', "
        f"{counts['failed']} 'not charged', {crashed} errors), {len(charged)} cards charged, "
        f"{orphaned} charged without an active permit, {twice} charged twice, {lied} told 'not "
        f"charged' although charged, {receipts} receipts in the outbox -> {'OK' if ok else 'WRONG'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("PARKOPS_TEST_DATABASE_URL") or DEFAULT_DATABASE
    )
    parser.add_argument("--purchases", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--spaces", type=int, default=10)
    parser.add_argument("--fault-buyers", type=int, default=30)
    parser.add_argument("--fault-seconds", type=float, default=5.0)
    parser.add_argument(
        "--baseline", default=BASELINE, help="git commit whose checkout is measured first ('none': skip)"
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("the benchmark runs on PostgreSQL (--database-url postgresql+psycopg://...)")
    before = None
    if args.baseline != "none":
        before = baseline(args.database_url, args.baseline, args.purchases, args.workers)
        if before is not None:
            print(f"throughput, baseline ({args.baseline}, before the rework): {before.line()}")
    prepare(args.database_url).dispose()
    # As a web deployment would: many more requests than connections, which queue for the pool.
    database = Database(args.database_url, pool_size=POOL_SIZE)
    now = throughput(database, args.purchases, args.workers)
    print(f"throughput, now ({args.workers} threads, 50 lots): {now.line()}")
    if before is not None:
        print(
            f"  {now.rate / before.rate:.1f}x the purchases per second of the baseline, "
            f"{now.cpu_ms / before.cpu_ms:.2f}x its CPU per purchase"
        )
    met = now.rate >= TARGET_RATE and now.p95_ms <= TARGET_P95_MS
    print(
        f"  target >= {TARGET_RATE} purchases/s with p95 <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'}"
    )
    ok = contention(database, args.buyers, args.spaces)
    ok = dropped_connections(database, args.fault_buyers, args.fault_seconds) and ok
    database.dispose()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
