"""Report and search benchmark: fills a database with N incidents spread over a year across ~200
services (with timelines, postmortems, action items, duplicates and cascade children), then times
the weekly digest, the monthly report and search through Firebell's own code.

    python bench/reports.py --incidents 1000000
    python bench/reports.py --incidents 100000 --database-url postgresql://postgres@127.0.0.1:5432/firebell_bench

The last line printed is one JSON object: incidents, weekly_ms, monthly_ms, search_p99_ms (and a
few more figures). A database already holding N incidents is reused (--refill to start over);
a PostgreSQL database named in the URL is created if missing. Not a timed test.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from incidents.catalog import Catalog, parse_catalog  # noqa: E402
from storage.db import Database, normalise_url  # noqa: E402
from storage.schema import incidents as incidents_table  # noqa: E402

UTC = timezone.utc
NOW = datetime(2025, 6, 4, 10, 0, tzinfo=UTC)     # a Wednesday: reports look back from here
DAY = timedelta(days=1)
LEVELS = (("service-down", 0.03), ("high-error-rate", 0.10), ("high-latency", 0.12),
          ("minor", 0.75))
PROBLEMS = (
    "{svc} is down: 0/{n} pods ready", "{svc} 5xx error rate above {n}%",
    "High latency on {svc}: p99 {n}00 ms", "{svc} health check failing",
    "Disk {n}% full on {svc} primary", "Certificate for {svc} expires in {n} days",
    "{svc} OOMKilled pods restarting", "Kafka consumer lag on {svc} above {n}k",
    "{svc} connection pool exhausted", "Payment declines spiking via {svc}",
    "{svc} replication lag {n} s", "Timeouts calling {svc} from checkout",
    "{svc} queue backlog growing", "DNS resolution errors in {svc}",
    "{svc} canary failing after deploy {n}", "Rate limit exceeded on {svc} upstream",
)
NOTES = (
    "rolled back deploy {n}", "restarted the pods", "failover to the replica in eu-west",
    "scaled the deployment to {n} replicas", "flushed the cache", "rotated the certificate",
    "cleared the dead letter queue", "paused the batch import", "vendor confirmed an outage",
    "increased the connection pool to {n}", "blocked abusive client {n}",
    "reverted feature flag new-pricing", "disk cleaned up, {n} GB freed",
)
CAUSES = (
    "a config change removed the connection limit", "an expired TLS certificate",
    "a slow query after the index was dropped", "memory leak in the JSON encoder",
    "a noisy neighbour saturated the node", "the upstream payment provider degraded",
    "a retry storm after a timeout change", "a schema migration locked the table",
)
QUERY_WORDS = ("payment", "declines", "certificate", "disk full", "latency", "rollback",
               "rolled back", "replica", "kafka lag", "oomkilled", "deploy", "timeout",
               "dns", "connection pool", "queue backlog", "checkout", "canary", "failover",
               "cache", "expired certificate", "slow query", "memory leak", "retry storm",
               "migration lock", "vendor outage", "feature flag", "replication lag",
               "health check", "rate limit", "noisy neighbour")


def synthetic_catalog(rng: random.Random, services: int = 200, teams: int = 25) -> dict:
    team_keys = [f"team-{i:02d}" for i in range(teams)]
    people = [{"name": f"Person {i}", "email": f"person{i}@bench.example"} for i in range(100)]
    out_teams = {k: {"name": k.replace("-", " ").title(), "email": f"{k}@bench.example",
                     "members": [people[(i * 4 + j) % 100]["email"] for j in range(4)]}
                 for i, k in enumerate(team_keys)}
    out_services = []
    for i in range(services):
        out_services.append({
            "name": f"svc-{i:03d}-{rng.choice(['api', 'db', 'web', 'worker', 'gateway'])}",
            "owner_team": team_keys[i % teams],
            "revenue_per_minute_usd": rng.choice([0, 0, 50, 150, 400, 900, 2500]),
            "oncall": {"primary": people[i % 100]["email"]}})
    return {"timezone": "Europe/Amsterdam", "teams": out_teams, "services": out_services,
            "people": people}


def lognormal_seconds(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0, sigma))


def generate(n: int, catalog: Catalog, seed: int):
    """Rows for incidents, timeline, postmortems, action items, in id order."""
    rng = random.Random(seed)
    services = list(catalog.services.values())
    # A few busy services and a long tail (Zipf-like: the busiest gets about 10%).
    service_weights = [1 / (k + 1) ** 0.8 for k in range(len(services))]
    level_names = [lv for lv, _ in LEVELS]
    level_weights = [w for _, w in LEVELS]
    needs = set(catalog.levels.needs_postmortem)
    start = NOW - timedelta(days=365)
    span = (NOW - start).total_seconds()
    # Incidents arrive in time order (ids grow with time, as in production).
    offsets = sorted(rng.random() * span for _ in range(n))
    for idx, offset in enumerate(offsets, start=1):
        svc = rng.choices(services, service_weights)[0]
        triggered = start + timedelta(seconds=offset)
        level = rng.choices(level_names, level_weights)[0]
        template = rng.randrange(len(PROBLEMS))
        title = PROBLEMS[template].format(svc=svc.name, n=rng.randint(2, 99))
        age = NOW - triggered
        parent_id = link_kind = None
        if idx > 20 and rng.random() < 0.10:
            parent_id = idx - rng.randint(1, 15)
            link_kind = rng.choice(["duplicate", "cascade"])
        acked = rng.random() < 0.85
        ack = triggered + timedelta(seconds=lognormal_seconds(rng, 180, 1.0)) if acked else None
        duration = timedelta(seconds=lognormal_seconds(rng, 2400, 1.1))
        resolved = triggered + duration
        status = "open" if resolved > NOW else ("closed" if age > 14 * DAY else "resolved")
        if ack and ack > NOW:
            ack = None
        if status == "open":
            resolved = None
        closed = resolved + timedelta(days=rng.uniform(1, 10)) if status == "closed" else None
        if closed and closed > NOW:
            closed, status = None, "resolved"
        fingerprint = f"{svc.name}:{template}"
        incident = dict(
            id=idx, source="pagerduty", external_id=f"P{idx:08d}", title=title,
            service=svc.name, team=svc.owner_team, level=level, status=status,
            triggered_at=triggered, acknowledged_at=ack, first_acknowledged_at=ack,
            acknowledged_by="Person 1" if ack else None, resolved_at=resolved, closed_at=closed,
            fingerprint=fingerprint, parent_id=parent_id, link_kind=link_kind,
            link_by="auto" if parent_id else None, correlated=True, no_auto_link=False,
            version=3, created_at=triggered, updated_at=resolved or triggered,
            last_event_at=resolved or triggered, pd_number=idx)
        timeline = [(idx, triggered, "triggered", "pagerduty",
                     f"Triggered in PagerDuty #{idx} on {svc.name}")]
        if ack:
            timeline.append((idx, ack, "acknowledged", "pagerduty", "acknowledged by Person 1"))
        if rng.random() < 0.3:
            timeline.append((idx, triggered + duration / 2, "note", "teams",
                             rng.choice(NOTES).format(n=rng.randint(10, 9999))))
        if resolved:
            timeline.append((idx, resolved, "resolved", "pagerduty", "resolved"))
        postmortem = items = None
        if parent_id is None and level in needs and resolved:
            complete = age > 21 * DAY and rng.random() < 0.95
            due = resolved + timedelta(days=7)
            cause = rng.choice(CAUSES)
            postmortem = dict(
                incident_id=idx, status="complete" if complete else "draft",
                owner=svc.primary, summary=f"{title}. Customers saw errors.",
                customer_impact="Some customers could not check out" if complete else None,
                impact_minutes=rng.choice([None, None, None, rng.randint(5, 240)]),
                root_cause=cause if complete else None,
                resolution=rng.choice(NOTES).format(n=1) if complete else None,
                due_at=due, reminders=0, created_at=resolved, updated_at=resolved,
                completed_at=resolved + timedelta(days=3) if complete else None,
                link_token=f"bench-{idx:026d}")  # unique; the random stream stays as it was
            if rng.random() < 0.5:
                items = dict(incident_id=idx, position=0, title=f"Prevent: {cause}",
                             owner=svc.primary, due_date=(resolved + 30 * DAY).date(),
                             jira_done=age > 60 * DAY and rng.random() < 0.8,
                             created_at=resolved, updated_at=resolved)
        yield incident, timeline, postmortem, items


INCIDENT_COLUMNS = ("id", "source", "external_id", "title", "service", "team", "level", "status",
                    "triggered_at", "acknowledged_at", "acknowledged_by", "first_acknowledged_at",
                    "resolved_at", "closed_at", "fingerprint", "parent_id", "link_kind",
                    "link_by", "correlated", "no_auto_link", "version", "created_at",
                    "updated_at", "last_event_at", "pd_number", "assignees", "details")
PM_COLUMNS = ("incident_id", "status", "owner", "summary", "customer_impact", "impact_minutes",
              "root_cause", "resolution", "due_at", "reminders", "created_at", "updated_at",
              "completed_at", "link_token")
AI_COLUMNS = ("incident_id", "position", "title", "owner", "due_date", "jira_done",
              "created_at", "updated_at")
TL_COLUMNS = ("incident_id", "at", "kind", "via", "text")


def _sqlite_value(v):
    if isinstance(v, datetime):  # what SQLAlchemy's SQLite DATETIME stores: naive UTC text
        return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    return v


def _pg_value(v):
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def _row(d: dict, columns, convert):
    d = {"assignees": "[]", "details": "{}", **d}
    return tuple(convert(d.get(c)) for c in columns)


async def fill(url: str, n: int, catalog: Catalog, seed: int, batch: int = 20000) -> float:
    started = time.perf_counter()
    buffers: dict[str, list] = {"incidents": [], "timeline": [], "postmortems": [],
                                "action_items": []}
    if url.startswith("sqlite"):
        import sqlite3
        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")

        def flush():
            conn.execute("BEGIN")
            for table, columns in (("incidents", INCIDENT_COLUMNS), ("timeline", TL_COLUMNS),
                                   ("postmortems", PM_COLUMNS), ("action_items", AI_COLUMNS)):
                if buffers[table]:
                    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                     f"({', '.join('?' * len(columns))})", buffers[table])
                    buffers[table].clear()
            conn.execute("COMMIT")
        convert = _sqlite_value
    else:
        import asyncpg
        pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))

        async def pg_flush():
            async with pg.transaction():
                for table, columns in (("incidents", INCIDENT_COLUMNS), ("timeline", TL_COLUMNS),
                                       ("postmortems", PM_COLUMNS),
                                       ("action_items", AI_COLUMNS)):
                    if buffers[table]:
                        await pg.copy_records_to_table(table, records=buffers[table],
                                                       columns=list(columns))
                        buffers[table].clear()
        convert = _pg_value
    count = 0
    for incident, timeline, postmortem, items in generate(n, catalog, seed):
        buffers["incidents"].append(_row(incident, INCIDENT_COLUMNS, convert))
        buffers["timeline"] += [tuple(convert(v) for v in e) for e in timeline]
        if postmortem:
            buffers["postmortems"].append(_row(postmortem, PM_COLUMNS, convert))
        if items:
            buffers["action_items"].append(_row(items, AI_COLUMNS, convert))
        count += 1
        if count % batch == 0:
            if url.startswith("sqlite"):
                flush()
            else:
                await pg_flush()
            rate = count / (time.perf_counter() - started)
            print(f"  {count:,} incidents ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    if url.startswith("sqlite"):
        flush()
        conn.execute("ANALYZE")
        conn.close()
    else:
        await pg_flush()
        await pg.execute("SELECT setval(pg_get_serial_sequence('incidents', 'id'), "
                         "(SELECT max(id) FROM incidents))")
        for table in ("timeline", "action_items"):
            await pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT coalesce(max(id), 1) FROM {table}))")
        await pg.execute("VACUUM ANALYZE")
        await pg.close()
    return time.perf_counter() - started


async def ensure_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    server, name = url.rsplit("/", 1)
    engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        exists = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                     {"n": name})).scalar()
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


async def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        server, name = url.rsplit("/", 1)
        if name in ("test", "postgres"):
            raise SystemExit(f"refusing to drop {name}")
        engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(url.split("///", 1)[1] + suffix).unlink(missing_ok=True)


def percentile_ms(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)] * 1000


async def measure(db: Database, catalog: Catalog, queries: int, seed: int) -> dict:
    from handlers.context import Context
    from handlers.reads.search import search
    from handlers.reports.compile import compile_report

    ctx = Context(db=db, catalog=catalog, clock=lambda: NOW)

    async def timed(fn, repeat=3):
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await fn()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples) * 1000, samples

    from incidents.periods import MONTH, last_complete
    from storage.schema import report_rollups

    async def forget(period_key=None):
        async with db.write() as conn:
            q = report_rollups.delete()
            if period_key:
                q = q.where(report_rollups.c.period == period_key)
            await conn.execute(q)

    weekly_ms, _ = await timed(lambda: compile_report(ctx, "weekly", now=NOW))
    # Cold: nothing cached (the first report after an import of a year of incidents).
    await forget()
    t0 = time.perf_counter()
    await compile_report(ctx, "monthly", now=NOW)
    monthly_cold_ms = (time.perf_counter() - t0) * 1000
    # Steady state: last month's report cached the earlier months; this month is computed.
    month = last_complete(MONTH, NOW, catalog.timezone)

    async def steady():
        await forget(month.key)
        t = time.perf_counter()
        await compile_report(ctx, "monthly", now=NOW)
        return time.perf_counter() - t
    monthly_ms = statistics.median([await steady() for _ in range(3)]) * 1000
    rng = random.Random(seed + 1)
    await search(ctx, "warm up the connection")   # a server's connections are warm
    samples = []
    for _ in range(queries):
        words = rng.choice(QUERY_WORDS)
        if rng.random() < 0.3:
            words += " " + rng.choice(QUERY_WORDS).split()[0]
        t0 = time.perf_counter()
        await search(ctx, words)
        samples.append(time.perf_counter() - t0)
    return {"weekly_ms": round(weekly_ms, 1), "monthly_ms": round(monthly_ms, 1),
            "monthly_cold_ms": round(monthly_cold_ms, 1),
            "search_p50_ms": round(percentile_ms(samples, 0.5), 2),
            "search_p99_ms": round(percentile_ms(samples, 0.99), 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--database-url", default=f"sqlite:///{HERE / 'bench-reports.db'}")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--refill", action="store_true", help="drop and fill again")
    parser.add_argument("--fill-only", action="store_true")
    args = parser.parse_args()
    url = normalise_url(args.database_url)
    catalog = parse_catalog(synthetic_catalog(random.Random(args.seed)))
    if args.refill:
        await drop_database(url)
    await ensure_database(url)
    db = Database(args.database_url)
    await db.migrate()
    async with db.read() as conn:
        have = (await conn.execute(select(func.count()).select_from(incidents_table))).scalar()
    fill_s = None
    if have != args.incidents:
        if have:
            await db.close()
            await drop_database(url)
            await ensure_database(url)
            db = Database(args.database_url)
            await db.migrate()
        print(f"filling {args.incidents:,} incidents into {db.dialect}...", file=sys.stderr)
        await db.close()
        fill_s = await fill(url, args.incidents, catalog, args.seed)
        db = Database(args.database_url)
    result = {"incidents": args.incidents, "database": db.dialect,
              "fill_s": round(fill_s, 1) if fill_s else None}
    if not args.fill_only:
        result.update(await measure(db, catalog, args.queries, args.seed))
    await db.close()
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    asyncio.run(main())
