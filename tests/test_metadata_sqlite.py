"""What only the SQLite metadata store does: its file, its migrations."""

import sqlite3
from contextlib import closing

import pytest

from audioserver.metadata.sqlite import MIGRATIONS, Database


async def test_an_older_databases_times_become_one_form(tmp_path):
    """Version 3 kept sessions and failures in epoch seconds and accounts'
    times to the second: after migrating, every time is RFC 3339 to the
    microsecond, so text order is time order."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        for script in MIGRATIONS[:3]:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
        conn.execute("PRAGMA user_version=3")
        conn.execute("INSERT INTO users VALUES ('alice', 'x', 'user', '2026-01-01T00:00:00Z')")
        conn.execute("INSERT INTO sessions VALUES ('h', 'alice', 'c', 1700000000.25, 1700000100.5)")
        conn.execute("INSERT INTO login_failures VALUES ('user:alice', 3, 1700000200.000001)")
        conn.execute("INSERT INTO api_tokens (user_name, label, token_hash, created_at,"
                     " last_used_at, expires_at) VALUES ('alice', 'old', 't',"
                     " '2026-01-01T00:00:00Z', NULL, '2026-02-01T12:30:00Z')")
    conn.close()
    db = Database(path)
    await db.open()
    await db.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT created, last_seen FROM sessions").fetchall() == [
            ("2023-11-14T22:13:20.250000Z", "2023-11-14T22:15:00.500000Z")]
        assert conn.execute("SELECT last_failure FROM login_failures").fetchall() == [
            ("2023-11-14T22:16:40.000001Z",)]
        assert conn.execute("SELECT created_at FROM users").fetchall() == [
            ("2026-01-01T00:00:00.000000Z",)]
        assert conn.execute("SELECT created_at, last_used_at, expires_at FROM api_tokens"
                            ).fetchall() == [("2026-01-01T00:00:00.000000Z", None,
                                              "2026-02-01T12:30:00.000000Z")]
        # Removing the account still removes its sessions: the rebuilt table
        # kept its foreign key.
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("DELETE FROM users")
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    conn.close()


# A library of 100,000 rows, analysed, with varied formats, rates and channels.
FILL = """
INSERT INTO audio (name, name_folded, storage_key, duration, frames, samplerate, channels,
                   format, subtype, content_type, size, sha256, created_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
SELECT 'file-' || i || '.wav', 'file-' || i || '.wav', 'key-' || i, (i % 997) / 10.0,
       i * 100, CASE i % 3 WHEN 0 THEN 44100 WHEN 1 THEN 48000 ELSE 22050 END, 1 + i % 2,
       CASE i % 4 WHEN 0 THEN 'WAV' WHEN 1 THEN 'FLAC' WHEN 2 THEN 'MP3' ELSE 'OGG' END,
       'PCM_16', 'audio/wav', 1000 + i % 7919, 'x', '2026-01-01T00:00:00.000000Z'
FROM n
"""


@pytest.fixture
async def large(tmp_path):
    path = tmp_path / "large.sqlite3"
    db = Database(path)
    await db.open()
    await db.close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(FILL)
        conn.execute("ANALYZE")
    return path


@pytest.mark.parametrize("order, index", [
    ("format, name", "audio_format"),
    ("format DESC, name DESC", "audio_format"),
    ("samplerate, name", "audio_samplerate"),
    ("channels DESC, name DESC", "audio_channels"),
])
async def test_the_new_sorts_walk_an_index_at_100000_rows(large, order, index):
    with closing(sqlite3.connect(large)) as conn:
        plan = str(conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM audio WHERE available = 1"
                                f" ORDER BY {order} LIMIT 101").fetchall())
    assert f"USING INDEX {index}" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


async def test_the_formats_present_are_found_by_probing_the_index(large):
    db = Database(large)
    await db.open()
    try:
        assert await db.formats() == ["FLAC", "MP3", "OGG", "WAV"]
    finally:
        await db.close()
    with closing(sqlite3.connect(large)) as conn:
        plan = str(conn.execute(
            "EXPLAIN QUERY PLAN SELECT min(format) FROM audio WHERE available = 1"
            " AND format > 'FLAC'").fetchall())
    assert "COVERING INDEX audio_format" in plan, plan
