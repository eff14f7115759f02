"""What only the PostgreSQL backend has: its schema bookkeeping, the
indexes its listings walk, and the one line it stops on at start-up."""

import asyncio

import asyncpg
import pytest

from audioserver.errors import StartupError
from audioserver.metadata import sqlite
from audioserver.metadata.postgres import MIGRATIONS, PostgresDatabase


async def test_two_instances_starting_together_migrate_once(postgres):
    """(Not a contract test: two SQLite instances opening a new file at
    once sometimes fail with "database is locked".)"""
    url = postgres.create_database("template0")
    first, second = PostgresDatabase(url), PostgresDatabase(url)
    try:
        await asyncio.gather(first.open(), second.open())
        assert await first.exists("a.wav") is await second.exists("a.wav") is False
    finally:
        await first.close()
        await second.close()
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version FROM schema_version ORDER BY version")
    finally:
        await conn.close()
    assert [row["version"] for row in rows] == list(range(1, len(MIGRATIONS) + 1))


# Enough rows, of varied values, analysed, for the planner to cost plans
# as it would for a real library.
FILL = """
INSERT INTO audio (name, name_folded, storage_key, duration, frames, samplerate, channels,
                   format, subtype, content_type, size, sha256, created_at)
SELECT 'file-' || i || '.wav', 'file-' || i || '.wav', 'key-' || i, (i % 997) / 10.0,
       i * 100, 44100, 1 + i % 2, 'WAV', 'PCM_16', 'audio/wav', 1000 + i % 7919,
       md5(i::text), '2026-01-01T00:00:00.' || lpad((i % 1000000)::text, 6, '0') || 'Z'
FROM generate_series(1, 20000) AS i;
ANALYZE audio;
"""


@pytest.fixture
async def filled(postgres_url):
    conn = await asyncpg.connect(postgres_url)
    await conn.execute(FILL)
    yield conn
    await conn.close()


@pytest.mark.parametrize("order, where, index", [
    ("name", "", "audio_name"),
    ("name DESC", "", "audio_name"),
    ("duration, name", "", "audio_duration"),
    ("size DESC, name DESC", "", "audio_size"),
    ("created_at, name", "", "audio_created"),
    ("duration, name", "AND (duration, name) > (50.5, 'file-9.wav')", "audio_duration"),
    ("name", "AND name > 'file-5'", "audio_name"),
])
async def test_each_sort_walks_its_index_to_a_page_without_sorting(filled, order, where, index):
    plan = "\n".join(row[0] for row in await filled.fetch(
        f"EXPLAIN SELECT * FROM audio WHERE available {where} ORDER BY {order} LIMIT 101"))
    assert f"Index Scan{' Backward' if 'DESC' in order else ''} using {index} on audio" \
        in plan, plan
    assert "Sort" not in plan.replace("Sort Key", ""), plan


# 100,000 rows with varied formats, rates and channels, for the sorts by them.
FILL_VARIED = """
INSERT INTO audio (name, name_folded, storage_key, duration, frames, samplerate, channels,
                   format, subtype, content_type, size, sha256, created_at)
SELECT 'file-' || i || '.wav', 'file-' || i || '.wav', 'key-' || i, (i % 997) / 10.0,
       i * 100, (ARRAY[44100, 48000, 22050])[1 + i % 3], 1 + i % 2,
       (ARRAY['WAV', 'FLAC', 'MP3', 'OGG'])[1 + i % 4], 'PCM_16', 'audio/wav',
       1000 + i % 7919, md5(i::text), '2026-01-01T00:00:00.000000Z'
FROM generate_series(1, 100000) AS i;
ANALYZE audio;
"""


@pytest.fixture
async def varied(postgres_url):
    conn = await asyncpg.connect(postgres_url)
    await conn.execute(FILL_VARIED)
    yield conn
    await conn.close()


@pytest.mark.parametrize("order, where, index", [
    ("format, name", "", "audio_format"),
    ("format DESC, name DESC", "", "audio_format"),
    ("samplerate, name", "", "audio_samplerate"),
    ("channels DESC, name DESC", "", "audio_channels"),
    ("format, name", "AND (format, name) > ('MP3', 'file-5.wav')", "audio_format"),
    ("samplerate DESC, name DESC", "AND (samplerate, name) < (48000, 'file-7.wav')",
     "audio_samplerate"),
])
async def test_the_sorts_by_format_rate_and_channels_walk_their_index_at_100000_rows(
        varied, order, where, index):
    plan = "\n".join(row[0] for row in await varied.fetch(
        f"EXPLAIN SELECT * FROM audio WHERE available {where} ORDER BY {order} LIMIT 101"))
    assert f"Index Scan{' Backward' if 'DESC' in order else ''} using {index} on audio" \
        in plan, plan
    assert "Sort" not in plan.replace("Sort Key", ""), plan


async def test_the_formats_present_are_found_by_probing_the_index(varied, postgres_url):
    db = PostgresDatabase(postgres_url)
    await db.open()
    try:
        assert await db.formats() == ["FLAC", "MP3", "OGG", "WAV"]
    finally:
        await db.close()
    plan = "\n".join(row[0] for row in await varied.fetch(
        "EXPLAIN SELECT min(format) FROM audio WHERE available AND format > 'FLAC'"))
    assert "Index Only Scan using audio_format" in plan, plan


async def test_an_unreachable_server_stops_start_up_in_one_line_without_the_password(
        postgres):
    url = f"postgresql://postgres:s3cret@127.0.0.1:{postgres.port + 1}/library"
    with pytest.raises(StartupError) as caught:
        await PostgresDatabase(url).open()
    message = str(caught.value)
    assert "127.0.0.1" in message and "library" in message and "\n" not in message
    assert "s3cret" not in message
    assert "s3cret" not in PostgresDatabase(url).label


async def test_a_missing_database_stops_start_up_naming_it(postgres):
    with pytest.raises(StartupError) as caught:
        await PostgresDatabase(postgres.url("no_such_library")).open()
    assert "no_such_library" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_its_schema_versions_keep_step_with_sqlites():
    assert len(MIGRATIONS) == len(sqlite.MIGRATIONS)
