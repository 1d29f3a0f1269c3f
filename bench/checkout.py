"""The checkout benchmark: purchases per second, and N concurrent buyers for M spaces, on PostgreSQL.

    .venv/bin/python bench/checkout.py [--buyers 200] [--spaces 10] [--purchases 2000] [--workers 16]

Both parts run the real checkout (``payments.checkout``: reserve, sandbox charge, settle, receipt
email to the outbox), each buyer on its own thread, connection and transactions, as concurrent
web requests would:

1. throughput: ``--purchases`` temporary permits bought by ``--workers`` threads across 50 lots
   with room to spare (lot locks rarely collide), reported as purchases per second and latency;
2. contention: ``--buyers`` threads released at once on one lot with ``--spaces`` spaces; exactly
   ``--spaces`` must be sold and every other buyer told "sold out", with no charge for them.

The threads share a pool of ``POOL_SIZE`` connections, as a web process's requests would: buyers
beyond it queue for a connection, then for the lot's row.

The database (default: ``PARKOPS_TEST_DATABASE_URL``, else a local ``parkops_bench``, created if
missing) is emptied and rebuilt: point it at nothing that holds real data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import func, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.db import Database  # noqa: E402
from dashboard.services import email, payments  # noqa: E402
from dashboard.services.payments import SUCCESS_CARD, ReceiptContext, SandboxProvider  # noqa: E402
from dashboard.services.permits import PermitRequest  # noqa: E402
from dashboard.services.plates import clean_plate  # noqa: E402
from models import Lot, Payment, Permit, PermitKind, PermitProduct, Pricing, SandboxCharge  # noqa: E402

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/parkops_bench"
RECEIPT = ReceiptContext(name="Bench", site_name="Bench", base_url="http://bench", tz=ZoneInfo("UTC"))
POOL_SIZE = 40  # PostgreSQL allows 100 connections by default
CARD = payments.clean_card(SUCCESS_CARD, "12/39", "123", datetime.now(UTC).date())


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
    database: Database, provider: SandboxProvider, lot: tuple[int, int], number: int
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
        idempotency_key=uuid.uuid4().hex,
        email_address=item.email or "",
        user_id=None,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        now=now,
    )
    return result.status, (time.perf_counter() - started) * 1000


def throughput(database: Database, purchases: int, workers: int) -> None:
    provider = SandboxProvider(database)
    lots = [add_lot(database, f"Throughput Lot {n:02d}", purchases) for n in range(50)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda n: buy(database, provider, lots[n % len(lots)], n), range(purchases)))
    elapsed = time.perf_counter() - started
    latencies = sorted(ms for _status, ms in results)
    paid = sum(status == "paid" for status, _ms in results)
    print(f"throughput: {paid} of {purchases} purchases paid by {workers} threads in {elapsed:.1f} s")
    print(
        f"  {paid / elapsed:.0f} purchases/s; per purchase p50 {statistics.median(latencies):.0f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.0f} ms"
    )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("PARKOPS_TEST_DATABASE_URL") or DEFAULT_DATABASE
    )
    parser.add_argument("--purchases", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--spaces", type=int, default=10)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("the benchmark runs on PostgreSQL (--database-url postgresql+psycopg://...)")
    prepare(args.database_url).dispose()
    # As a web deployment would: many more requests than connections, which queue for the pool.
    database = Database(args.database_url, pool_size=POOL_SIZE)
    throughput(database, args.purchases, args.workers)
    ok = contention(database, args.buyers, args.spaces)
    database.dispose()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
