"""What only the SQLite metadata store does: its file, its migrations."""

import sqlite3

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
