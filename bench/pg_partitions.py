"""Plain against HASH-partitioned audio tables, at a million rows.

    .venv/bin/python bench/pg_partitions.py [--rows 1000000] [--runs 25]

Starts a throwaway PostgreSQL cluster (tests/pgserver.py), builds the
audio schema (audioserver.metadata.postgres), loads ROWS rows into it, copies
them into a table partitioned by HASH (name) into 8 partitions with the same
indexes, and prints the median time of the queries /list and /info make:
the default first page, a keyset page deep in the name order, a
duration-filtered page, a point lookup by name, and the count a listing
pays for after any write (counts are kept per data_version).
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pgserver import PostgresServer  # noqa: E402

from audioserver.metadata.postgres import COLUMNS, PostgresDatabase  # noqa: E402

PARTITIONS = 8
LOAD = """
INSERT INTO audio (name, name_folded, storage_key, duration, frames, samplerate, channels,
                   format, subtype, content_type, size, sha256, created_at)
SELECT name, name, 'key-' || i, (i * 7919 % 36000) / 10.0, i * 100, 44100, 1 + i % 2,
       'WAV', 'PCM_16', 'audio/wav', 1000 + i * 104729 % 10000000, md5(i::text),
       to_char(timestamp '2026-01-01' + i * interval '1 second',
               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM (SELECT i, md5('name' || i) || '.wav' AS name
      FROM generate_series(1::bigint, $1) AS i) AS rows
"""
# The same columns, keys and indexes as `audio`, partitioned by name: every
# unique key contains name, which is what partitioning (and Citus) needs.
PARTITIONED = [
    "CREATE TABLE audio_hash (LIKE audio INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    " PARTITION BY HASH (name)",
    *[f"CREATE TABLE audio_hash_{n} PARTITION OF audio_hash"
      f" FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {n})" for n in range(PARTITIONS)],
    "ALTER TABLE audio_hash ADD CONSTRAINT audio_hash_name UNIQUE (name) INCLUDE (duration)",
    *[f"CREATE INDEX ON audio_hash (available, {column}, name)"
      for column in ("duration", "size", "created_at", "format", "samplerate", "channels",
                     "owner")],
    "INSERT INTO audio_hash SELECT * FROM audio",
    "VACUUM ANALYZE audio",
    "VACUUM ANALYZE audio_hash",
]
QUERIES = {
    "first page": (f"SELECT {COLUMNS} FROM {{table}} WHERE available"
                   " ORDER BY name LIMIT 101", lambda deep: ()),
    "deep keyset page": (f"SELECT {COLUMNS} FROM {{table}} WHERE available AND name > $1"
                         " ORDER BY name LIMIT 101", lambda deep: (deep,)),
    "duration-filtered page": (f"SELECT {COLUMNS} FROM {{table}} WHERE available"
                               " AND duration >= $1 AND duration <= $2 ORDER BY name LIMIT 101",
                               lambda deep: (600.0, 660.0)),
    "point lookup": (f"SELECT {COLUMNS} FROM {{table}} WHERE name = $1", lambda deep: (deep,)),
    # What a listing pays when data_version has moved since its count was kept.
    "count, not kept": ("SELECT count(*) FROM {table} WHERE available", lambda deep: ()),
}


async def load(url: str, rows: int) -> None:
    db = PostgresDatabase(url)
    await db.open()
    await db.close()
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await conn.execute(LOAD, rows)
        for statement in PARTITIONED:
            await conn.execute(statement)
        print(f"loaded {rows} rows into both tables in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()


async def measure(url: str, rows: int, runs: int) -> dict:
    conn = await asyncpg.connect(url)
    try:
        # A name three quarters of the way through the order.
        deep = await conn.fetchval("SELECT name FROM audio ORDER BY name OFFSET $1 LIMIT 1",
                                   rows * 3 // 4)
        results = {}
        for label, (sql, args) in QUERIES.items():
            for table in ("audio", "audio_hash"):
                statement = await conn.prepare(sql.format(table=table))
                await statement.fetch(*args(deep))  # warm the cache and the plan
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    await statement.fetch(*args(deep))
                    times.append(time.perf_counter() - started)
                results[label, table] = statistics.median(times) * 1000
        return results
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    server = PostgresServer()
    try:
        server.start()
        server.run_sql("CREATE DATABASE bench")
        url = server.url("bench")
        asyncio.run(load(url, args.rows))
        results = asyncio.run(measure(url, args.rows, args.runs))
    finally:
        server.stop()
    print(f"median of {args.runs} runs, ms     plain  hash x{PARTITIONS}  partitioned/plain")
    for label in QUERIES:
        plain, hashed = results[label, "audio"], results[label, "audio_hash"]
        print(f"{label:24} {plain:8.3f} {hashed:9.3f} {hashed / plain:10.2f}")


if __name__ == "__main__":
    main()
