"""The metadata interface, as callers see it, on every backend.

The same tests run on SQLite (a file in tmp_path) and on PostgreSQL (a fresh
database in the session's throwaway cluster), through public methods only:
callers must not be able to tell the backends apart.
"""

import asyncio
import dataclasses
import inspect
import itertools

import pytest

from audioserver.accounts import EVERYTHING, ApiToken, Session, User, Viewer
from audioserver.errors import Gone, NameTaken, NotFound, UserExists
from audioserver.metadata import AccountStore, AudioStore, Conflict, TokenRow, UserRow
from audioserver.metadata.postgres import PostgresDatabase
from audioserver.metadata.postgres_accounts import PostgresAccounts
from audioserver.metadata.sqlite import Database
from audioserver.metadata.sqlite_accounts import Accounts
from audioserver.models import AudioRecord, ListQuery

ALICE, BOB = User("alice", "user"), User("bob", "user")
ANONYMOUS, AS_ALICE, AS_BOB = Viewer(False), Viewer(False, "alice"), Viewer(False, "bob")
CREATED = "2026-01-01T00:00:00.000000Z"


def record(name: str, **fields) -> AudioRecord:
    values = dict(name=name, duration=1.5, frames=66150, samplerate=44100, channels=1,
                  format="WAV", subtype="PCM_16", content_type="audio/wav", size=132344,
                  sha256="0" * 64, created_at=CREATED, owner=None, visibility="public",
                  storage_key=f"key-{name}", available=True)
    return AudioRecord(**{**values, **fields})


class Backend:
    """How to make stores of one backend: `make(where)` an unopened
    (database, accounts) pair; `migrated` and `new()` say where."""

    def __init__(self, request, tmp_path):
        self.name = request.param
        if self.name == "sqlite":
            numbers = itertools.count(1)
            self.new = lambda: tmp_path / f"new-{next(numbers)}.db"
        else:
            server = request.getfixturevalue("postgres")
            self.new = lambda: server.create_database("template0")
        self.migrated = (tmp_path / "audioserver.db" if self.name == "sqlite"
                         else request.getfixturevalue("postgres_url"))

    def make(self, where):
        db = Database(where) if self.name == "sqlite" else PostgresDatabase(where, max_size=4)
        return db, db.accounts()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path) -> Backend:
    return Backend(request, tmp_path)


@pytest.fixture
async def stores(backend):
    """`await stores()`: an opened (database, accounts) pair; called again,
    another instance on the same database, as a second server would open it.
    `await stores(where)`: one on another database. All closed at the end."""
    opened = []

    async def open_one(where=None):
        db, accounts = backend.make(backend.migrated if where is None else where)
        opened.append(db)
        await db.open()
        return db, accounts

    yield open_one
    for db in opened:
        await db.close()


@pytest.fixture
async def store(stores):
    return await stores()


@pytest.fixture
def db(store):
    return store[0]


@pytest.fixture
def accounts(store):
    return store[1]


async def add_users(accounts, *users: User) -> None:
    for user in users:
        await accounts.add_user(user, "hash-of-" + user.name, CREATED)


# Single rows


async def test_an_inserted_record_reads_back_equal(db):
    stored = record("a.wav", duration=2.25, frames=2**40, size=2**40 + 3,
                    created_at="2026-02-03T04:05:06.123456Z")
    await db.insert([stored])
    assert await db.get("a.wav") == stored
    assert await db.exists("a.wav")
    assert await db.records() == [stored]


async def test_the_data_version_moves_with_every_write_of_any_instance(stores):
    (db, _), (other, _) = await stores(), await stores()
    seen = [await db.data_version()]
    assert await db.data_version() == seen[-1]  # reading moves nothing
    for write in (lambda: other.insert([record("a.wav")]),
                  lambda: other.set_visibility("a.wav", "private"),
                  lambda: db.set_available(["key-a.wav"], False),
                  lambda: other.delete("a.wav")):
        await write()
        version = await db.data_version()
        assert version not in seen
        seen.append(version)


async def test_a_missing_name_is_not_found(db):
    with pytest.raises(NotFound):
        await db.get("nothing.wav")
    assert not await db.exists("nothing.wav")


async def test_a_taken_name_is_refused_and_nothing_of_the_batch_is_stored(db):
    await db.insert([record("a.wav")])
    with pytest.raises(NameTaken) as caught:
        await db.insert([record("b.wav"), record("a.wav", storage_key="other")])
    assert caught.value.extra == {"name": "a.wav"}
    assert not await db.exists("b.wav")
    assert (await db.get("a.wav")).storage_key == "key-a.wav"


async def test_one_of_twenty_concurrent_inserts_of_a_name_wins_across_instances(stores):
    first, _ = await stores()
    second, _ = await stores()
    tries = [(first, second)[i % 2].insert([record("race.wav", storage_key=f"k{i}")])
             for i in range(20)]
    outcomes = await asyncio.gather(*tries, return_exceptions=True)
    assert sum(outcome is None for outcome in outcomes) == 1
    assert all(isinstance(outcome, NameTaken) for outcome in outcomes if outcome is not None)
    assert len(await first.records()) == 1


# Availability and storage keys


async def test_a_row_whose_file_is_missing_is_gone_until_it_comes_back(db):
    await db.insert([record("a.wav"), record("b.wav")])
    await db.set_available(["key-a.wav"], False)
    with pytest.raises(Gone):
        await db.get("a.wav")
    assert await db.storage_keys() == {"key-a.wav": ("a.wav", False),
                                       "key-b.wav": ("b.wav", True)}
    assert await db.summary() == (1, 1.5)
    records, total, more = await db.search(ListQuery())
    assert ([r.name for r in records], total, more) == (["b.wav"], 1, False)
    await db.set_available(["key-a.wav"], True)
    assert (await db.get("a.wav")).available


# Deleting and visibility, with hooks inside the transaction


async def test_delete_returns_the_row_after_its_hook_saw_it(db):
    await db.insert([record("a.wav")])
    seen = []

    async def hook(deleted):
        seen.append(deleted)
    assert await db.delete("a.wav", before_commit=hook) == record("a.wav")
    assert seen == [record("a.wav")]
    assert not await db.exists("a.wav")
    with pytest.raises(NotFound):
        await db.delete("a.wav")


async def test_a_delete_whose_hook_fails_leaves_the_row(db):
    await db.insert([record("a.wav")])

    async def hook(deleted):
        raise OSError("the trash is full")
    with pytest.raises(OSError):
        await db.delete("a.wav", before_commit=hook)
    assert await db.get("a.wav") == record("a.wav")
    assert (await db.search(ListQuery()))[1] == 1


async def test_set_visibility_hands_its_hook_before_and_after(db, accounts):
    await add_users(accounts, ALICE)
    await db.insert([record("a.wav", owner="alice")])
    seen = []

    async def hook(before, after):
        seen.append((before.visibility, after.visibility))
        return None
    after = await db.set_visibility("a.wav", "private", before_commit=hook)
    assert after == record("a.wav", owner="alice", visibility="private")
    assert seen == [("public", "private")]
    assert await db.get("a.wav") == after
    with pytest.raises(NotFound):
        await db.set_visibility("nothing.wav", "private")


async def test_a_visibility_change_whose_hook_fails_leaves_the_row(db):
    await db.insert([record("a.wav")])

    async def hook(before, after):
        raise OSError("cannot write the sidecar")
    with pytest.raises(OSError):
        await db.set_visibility("a.wav", "private", before_commit=hook)
    assert (await db.get("a.wav", ANONYMOUS)).visibility == "public"


# Who sees what


async def test_private_rows_are_seen_by_their_owner_and_by_everything_only(db, accounts):
    await add_users(accounts, ALICE, BOB)
    await db.insert([record("mine.wav", owner="alice", visibility="private", duration=2.0),
                     record("open.wav", owner="alice", duration=3.0),
                     record("old.wav", duration=4.0)])
    for viewer, expected in [(ANONYMOUS, ["old.wav", "open.wav"]),
                             (AS_BOB, ["old.wav", "open.wav"]),
                             (AS_ALICE, ["mine.wav", "old.wav", "open.wav"]),
                             (EVERYTHING, ["mine.wav", "old.wav", "open.wav"])]:
        records, total, _ = await db.search(ListQuery(), viewer)
        assert [r.name for r in records] == expected, viewer
        assert total == len(expected)
        assert await db.exists("mine.wav", viewer) == ("mine.wav" in expected)
        assert await db.summary(viewer) == (len(expected), 7.0 + 2.0 * ("mine.wav" in expected))
    for viewer in (ANONYMOUS, AS_BOB):
        with pytest.raises(NotFound) as caught:
            await db.get("mine.wav", viewer)
        assert caught.value.detail == (await _not_found_detail(db, "nothing.wav")).replace(
            "nothing.wav", "mine.wav")


async def _not_found_detail(db, name: str) -> str:
    with pytest.raises(NotFound) as caught:
        await db.get(name)
    return caught.value.detail


# Listing


def library() -> list[AudioRecord]:
    """Records that differ in every sort column, with ties to break by name."""
    return [record(f"{i:02d}-{'Éclair' if i % 5 == 0 else 'tone'}.{fmt.lower()}",
                   duration=float(i % 7) + 0.5, size=1000 + (i * 37) % 11,
                   created_at=f"2026-01-{1 + i % 4:02d}T00:00:00.000000Z",
                   samplerate=(44100, 48000)[i % 2], channels=1 + i % 3, format=fmt,
                   owner=("alice", None)[i % 2], visibility=("public", "private")[i % 3 == 0],
                   # Tags on some: an artist on every third, an album on every fourth.
                   artist=("Ünder Sea", None, "Other")[i % 3],
                   album=("Deep", None, None, "Shallow")[i % 4],
                   title="Blue Whale Song" if i % 6 == 0 else None,
                   description="recorded at DAWN" if i % 7 == 0 else None,
                   cover="image/png" if i % 8 == 0 else None)
            for i, fmt in zip(range(40), ["WAV", "FLAC", "MP3", "WAVEX"] * 10)]


SORT_KEYS = {"name": lambda r: (r.name,), "duration": lambda r: (r.duration, r.name),
             "size": lambda r: (r.size, r.name), "created": lambda r: (r.created_at, r.name),
             "format": lambda r: (r.format, r.name),
             "samplerate": lambda r: (r.samplerate, r.name),
             "channels": lambda r: (r.channels, r.name)}


def sort_value(record: AudioRecord, sort: str):
    """What /list puts in a cursor for `record` under `sort`."""
    return SORT_KEYS[sort](record)[0]


@pytest.fixture
async def listed(db, accounts):
    await add_users(accounts, ALICE)
    rows = library()
    await db.insert(rows)
    return rows


async def all_pages(db, query: ListQuery, viewer: Viewer = EVERYTHING) -> list[str]:
    """Every page of `query`, following the keyset cursor as /list does."""
    names, pages = [], 0
    while True:
        records, total, more = await db.search(query, viewer)
        names += [r.name for r in records]
        pages += 1
        assert pages <= 100
        if not more:
            return names
        last = records[-1]
        query = query.next_page(sort_value(last, query.sort), last.name)


async def all_pages_backwards(db, query: ListQuery, viewer: Viewer = EVERYTHING
                              ) -> tuple[list[str], list[int]]:
    """Every page from the last to the first, following Previous links, and
    where each page starts (1-based)."""
    records, _, more = await db.search(query, viewer)
    while more:
        last = records[-1]
        records, _, more = await db.search(
            query.next_page(sort_value(last, query.sort), last.name), viewer)
    names, starts = [], []
    while True:
        names[:0] = [r.name for r in records]
        first = records[0]
        starts.insert(0, 1 + await db.rows_before(
            query, (sort_value(first, query.sort), first.name), viewer))
        query = query.previous_page(sort_value(first, query.sort), first.name)
        records, _, more = await db.search(query, viewer)
        assert len(starts) <= 100
        if not records:
            return names, starts
        assert len(records) == query.limit or not more


@pytest.mark.parametrize("sort", SORT_KEYS)
@pytest.mark.parametrize("descending", [False, True])
async def test_pages_of_every_sort_tile_the_whole_set_in_order(db, listed, sort, descending):
    expected = sorted(listed, key=SORT_KEYS[sort], reverse=descending)
    query = ListQuery(sort=sort, descending=descending, limit=7)
    assert await all_pages(db, query) == [r.name for r in expected]
    records, total, more = await db.search(query)
    assert (len(records), total, more) == (7, 40, True)


@pytest.mark.parametrize("sort", SORT_KEYS)
@pytest.mark.parametrize("descending", [False, True])
async def test_previous_pages_tile_the_whole_set_and_know_where_they_start(db, listed, sort,
                                                                          descending):
    expected = sorted(listed, key=SORT_KEYS[sort], reverse=descending)
    query = ListQuery(sort=sort, descending=descending, limit=7)
    names, starts = await all_pages_backwards(db, query)
    assert names == [r.name for r in expected]
    assert starts == [1, 8, 15, 22, 29, 36]


async def test_previous_pages_for_a_viewer_with_filters(db, listed):
    query = ListQuery(sort="samplerate", descending=True, limit=4, formats=("FLAC", "WAVEX"))
    expected = sorted((r for r in listed if r.visibility == "public"
                       and r.format in query.formats), key=SORT_KEYS["samplerate"], reverse=True)
    names, starts = await all_pages_backwards(db, query, AS_BOB)
    assert names == [r.name for r in expected]
    assert starts == list(range(1, len(expected) + 1, 4))


async def test_the_page_before_the_first_is_empty(db, listed):
    first = sorted(listed, key=SORT_KEYS["name"])[0]
    records, total, more = await db.search(ListQuery().previous_page(first.name, first.name))
    assert (records, total, more) == ([], 40, False)
    assert await db.rows_before(ListQuery(), (first.name, first.name)) == 0


async def test_formats_are_those_of_the_files_a_viewer_may_see(db, accounts):
    await add_users(accounts, ALICE)
    await db.insert([record("a.wav"), record("b.flac", format="FLAC"),
                     record("c.mp3", format="MP3", owner="alice", visibility="private"),
                     record("d.aiff", format="AIFF", storage_key="gone")])
    await db.set_available(["gone"], False)
    assert await db.formats() == ["FLAC", "MP3", "WAV"]
    assert await db.formats(ANONYMOUS) == ["FLAC", "WAV"]
    assert await db.formats(AS_ALICE) == ["FLAC", "MP3", "WAV"]


@pytest.mark.parametrize("query, test", [
    (ListQuery(min_duration=2.5), lambda r: r.duration >= 2.5),
    (ListQuery(max_duration=2), lambda r: r.duration <= 2),
    (ListQuery(min_duration=1, max_duration=3.5), lambda r: 1 <= r.duration <= 3.5),
    (ListQuery(formats=("WAV", "WAVEX")), lambda r: r.format in ("WAV", "WAVEX")),
    (ListQuery(samplerate=48000), lambda r: r.samplerate == 48000),
    (ListQuery(channels=2), lambda r: r.channels == 2),
    (ListQuery(q="éCLAIR"), lambda r: "éclair" in r.name.casefold()),
    (ListQuery(q="tone.mp3"), lambda r: "tone.mp3" in r.name),
    (ListQuery(owner="alice"), lambda r: r.owner == "alice"),
    (ListQuery(visibility="private"), lambda r: r.visibility == "private"),
    # q finds text fields too, case-insensitively; artist and album exactly.
    (ListQuery(q="WHALE"), lambda r: r.title is not None),
    (ListQuery(q="dawn"), lambda r: r.description is not None),
    (ListQuery(q="ünder"), lambda r: r.artist == "Ünder Sea"),
    (ListQuery(artist="Ünder Sea"), lambda r: r.artist == "Ünder Sea"),
    (ListQuery(artist="ünder sea"), lambda r: False),
    (ListQuery(album="Deep", artist="Other"), lambda r: r.album == "Deep"
     and r.artist == "Other"),
    (ListQuery(samplerate=2**63 - 1), lambda r: False),
    (ListQuery(channels=1, formats=("FLAC",), sort="duration", descending=True),
     lambda r: r.channels == 1 and r.format == "FLAC"),
], ids=lambda value: "" if callable(value) else None)
async def test_filters_page_and_count_what_they_match(db, listed, query, test):
    expected = sorted((r for r in listed if test(r)), key=SORT_KEYS[query.sort],
                      reverse=query.descending)
    query = dataclasses.replace(query, limit=3)
    assert await all_pages(db, query) == [r.name for r in expected]
    assert (await db.search(query))[1] == len(expected)


async def test_pages_for_a_viewer_tile_what_it_may_see(db, listed):
    expected = sorted((r.name for r in listed if r.visibility == "public"))
    assert await all_pages(db, ListQuery(limit=6), ANONYMOUS) == expected
    assert (await db.search(ListQuery(), ANONYMOUS))[1] == len(expected)


async def test_a_cursor_duration_may_be_a_whole_number(db, listed):
    query = ListQuery(sort="duration").next_page(3, "")
    records, total, _ = await db.search(query)
    assert [r.name for r in records] == [
        r.name for r in sorted(listed, key=SORT_KEYS["duration"]) if r.duration > 3]
    assert total == 40


async def test_a_count_follows_writes_made_by_another_instance(stores):
    first, _ = await stores()
    second, _ = await stores()
    await first.insert([record("a.wav")])
    query = ListQuery(min_duration=1)
    assert (await first.search(query))[1] == 1
    await second.insert([record("b.wav")])
    assert (await first.search(query))[1] == 2
    await second.set_available(["key-a.wav"], False)
    assert (await first.search(query))[1] == 1
    await second.delete("b.wav")
    assert (await first.search(query))[1:] == (0, False)


# Accounts


def at(second: int) -> str:
    """A time in the one form the stores keep (RFC 3339 UTC, microseconds)."""
    return f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}.000000Z"


async def test_users_are_added_once_and_found_by_name(accounts):
    assert await accounts.count_users() == 0
    await add_users(accounts, ALICE, User("root", "admin"))
    with pytest.raises(UserExists):
        await accounts.add_user(ALICE, "another hash", CREATED)
    assert await accounts.count_users() == 2
    assert await accounts.password_hash("alice") == (ALICE, "hash-of-alice")
    assert await accounts.password_hash("root") == (User("root", "admin"), "hash-of-root")
    assert await accounts.password_hash("nobody") is None


async def test_users_lists_every_account_with_its_files(db, accounts):
    await add_users(accounts, BOB, ALICE)
    await db.insert([record("a.wav", owner="alice"), record("b.wav", owner="alice"),
                     record("c.wav")])
    assert await accounts.users() == [(ALICE, CREATED, 2), (BOB, CREATED, 0)]


async def test_a_new_password_ends_sessions_and_may_revoke_tokens(accounts):
    await add_users(accounts, ALICE)
    await accounts.add_session(session("s1"), at(0), at(0))
    await accounts.add_token("alice", "laptop", "t1", at(1))
    await accounts.set_password("alice", "new hash")
    assert await accounts.password_hash("alice") == (ALICE, "new hash")
    assert await accounts.session("s1") is None
    assert [t.label for t in await accounts.tokens("alice")] == ["laptop"]
    await accounts.set_password("alice", "newer hash", revoke_tokens=True)
    assert await accounts.tokens("alice") == []
    with pytest.raises(NotFound):
        await accounts.set_password("nobody", "hash")


async def test_removing_a_user_takes_its_sessions_and_tokens_and_disowns_its_files(
        db, accounts):
    await add_users(accounts, ALICE, BOB)
    await db.insert([record("a.wav", owner="alice"), record("b.wav", owner="bob")])
    await accounts.add_session(session("s1"), at(0), at(0))
    await accounts.add_token("alice", "laptop", "t1", at(1))
    assert (await db.search(ListQuery(owner="alice")))[1] == 1
    disowned = []

    async def on_disown(keys):
        disowned.append(keys)
    await db.accounts(on_disown=on_disown).remove_user("alice")
    assert disowned == [["key-a.wav"]]
    assert await accounts.password_hash("alice") is None
    assert await accounts.session("s1") is None
    assert await accounts.token_user("t1") is None
    assert (await db.get("a.wav")).owner is None
    assert (await db.get("b.wav")).owner == "bob"
    assert (await db.search(ListQuery(owner="alice")))[1] == 0
    with pytest.raises(NotFound):
        await accounts.remove_user("alice")


async def test_a_removal_whose_disown_hook_fails_leaves_the_account(db, accounts):
    await add_users(accounts, ALICE)
    await db.insert([record("a.wav", owner="alice")])

    async def on_disown(keys):
        raise OSError("cannot rewrite the sidecars")
    with pytest.raises(OSError):
        await db.accounts(on_disown=on_disown).remove_user("alice")
    assert await accounts.password_hash("alice") == (ALICE, "hash-of-alice")
    assert (await db.get("a.wav")).owner == "alice"


def session(token_hash: str, created: int = 10, last_seen: int = 10,
            user: User = ALICE) -> Session:
    return Session(user, token_hash, "csrf-" + token_hash, at(created), at(last_seen))


async def test_sessions_are_stored_touched_and_removed(accounts):
    await add_users(accounts, ALICE)
    await accounts.add_session(session("s1"), at(0), at(0))
    assert await accounts.session("s1") == session("s1")
    await accounts.touch_session("s1", at(20))
    assert await accounts.session("s1") == session("s1", last_seen=20)
    await accounts.remove_session("s1")
    assert await accounts.session("s1") is None
    assert await accounts.session("never") is None


async def test_ended_sessions_are_swept_by_a_new_one_and_on_demand(accounts):
    await add_users(accounts, ALICE)
    for name, created, last_seen in [("idle", 10, 20), ("old", 5, 40), ("live", 30, 40)]:
        await accounts.add_session(session(name, created, last_seen), at(0), at(0))
    # Ended: idle since before 25, or made before 8.
    await accounts.add_session(session("new", 50, 50), at(25), at(8))
    assert [await accounts.session(n) is not None for n in ("idle", "old", "live", "new")] \
        == [False, False, True, True]
    await accounts.remove_expired_sessions(at(45), at(0))
    assert await accounts.session("live") is None
    assert await accounts.session("new") == session("new", 50, 50)


async def test_tokens_sign_in_their_account_until_removed(accounts):
    await add_users(accounts, ALICE, BOB)
    first = await accounts.add_token("alice", "laptop", "t1", at(1))
    second = await accounts.add_token("alice", "ci", "t2", at(2), expires_at=at(90))
    assert first == ApiToken(first.id, "laptop", at(1), None, None)
    assert second == ApiToken(second.id, "ci", at(2), None, at(90))
    assert second.id > first.id
    assert await accounts.tokens("alice") == [first, second]
    assert await accounts.tokens("bob") == []
    await accounts.touch_token(second.id, at(3))
    assert await accounts.token_user("t2") == (
        ALICE, dataclasses.replace(second, last_used_at=at(3)))
    assert await accounts.token_user("unknown") is None
    with pytest.raises(NotFound):
        await accounts.remove_token("bob", first.id)
    await accounts.remove_token("alice", first.id)
    assert await accounts.token_user("t1") is None
    with pytest.raises(NotFound):
        await accounts.remove_token("alice", first.id)
    with pytest.raises(NotFound):
        await accounts.add_token("nobody", "x", "t3", at(4))


async def test_failed_sign_ins_are_counted_forgotten_and_cleared(accounts):
    keys = ["user:alice", "address:10.0.0.1"]
    assert await accounts.failures(keys) == (0, None)
    await accounts.add_failure(keys, at(10), at(0))
    await accounts.add_failure(["user:alice"], at(20), at(0))
    assert await accounts.failures(keys) == (2, at(20))
    assert await accounts.failures(["address:10.0.0.1"]) == (1, at(10))
    # A failure of another key forgets those quiet since before 15.
    await accounts.add_failure(["user:bob"], at(30), at(15))
    assert await accounts.failures(["address:10.0.0.1"]) == (0, None)
    assert await accounts.failures(keys) == (2, at(20))
    await accounts.clear_failures(keys)
    assert await accounts.failures(keys + ["user:bob"]) == (1, at(30))


async def test_concurrent_failures_of_one_key_across_instances_all_count(stores):
    (_, first), (_, second) = await stores(), await stores()
    await asyncio.gather(*[(first, second)[i % 2].add_failure(["user:alice"], at(i), at(0))
                           for i in range(1, 11)])
    # Instances commit in any order: the latest time is kept, not the last written.
    assert await first.failures(["user:alice"]) == (10, at(10))


@pytest.mark.parametrize("interface, stores", [
    (AudioStore, (Database, PostgresDatabase)),
    (AccountStore, (Accounts, PostgresAccounts)),
], ids=["audio", "accounts"])
def test_every_backend_has_the_interfaces_methods_with_its_parameters(interface, stores):
    for name, method in vars(interface).items():
        if callable(method) and not name.startswith("_"):
            expected = list(inspect.signature(method).parameters)
            for store in stores:
                assert list(inspect.signature(getattr(store, name)).parameters) == expected, \
                    (store, name)


async def test_a_delete_cancelled_inside_its_hook_leaves_the_row_and_the_store_usable(db):
    """aiohttp cancels a handler whose client goes away, at any await."""
    await db.insert([record("a.wav")])
    entered = asyncio.Event()

    async def hook(deleted):
        entered.set()
        await asyncio.Event().wait()
    deleting = asyncio.create_task(db.delete("a.wav", before_commit=hook))
    await entered.wait()
    deleting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await deleting
    assert await db.get("a.wav") == record("a.wav")
    await db.delete("a.wav")
    assert not await db.exists("a.wav")


async def test_a_database_says_whether_it_was_ever_written_to(backend, stores):
    new = backend.new()
    assert isinstance(await backend.make(new)[0].is_blank(), str)
    await stores(new)
    assert await backend.make(new)[0].is_blank() is None
    await stores()
    assert await backend.make(backend.migrated)[0].is_blank() is None


# Copying a library into another database (migrate)


async def test_copy_in_adds_what_is_missing_and_skips_identical_rows(backend, stores):
    _, accounts = await stores()
    target, target_accounts = await stores(backend.new())
    await add_users(accounts, ALICE)
    await add_users(target_accounts, ALICE)
    rows = [record("a.wav", owner="alice", visibility="private"), record("b.wav"),
            record("c.wav", available=False)]
    assert await target.copy_in(rows[:1]) == 1
    assert await target.copy_in(rows) == 2
    assert await target.copy_in(rows) == 0
    assert sorted(await target.records()) == sorted(rows)


async def test_copy_in_of_a_row_that_differs_is_a_conflict_and_writes_nothing(db):
    await db.insert([record("a.wav")])
    for other in [record("a.wav", sha256="1" * 64), record("a.wav", storage_key="other"),
                  record("z.wav", storage_key="key-a.wav")]:
        with pytest.raises(Conflict) as caught:
            await db.copy_in([record("b.wav"), other])
        assert "the target already holds" in str(caught.value)
        assert await db.records() == [record("a.wav")]


async def test_copy_in_of_a_row_whose_owner_is_missing_is_a_conflict(db):
    with pytest.raises(Conflict, match="'carol'"):
        await db.copy_in([record("a.wav", owner="carol")])
    assert await db.records() == []


async def test_accounts_export_with_their_hashes_and_copy_in_once(backend, stores):
    _, accounts = await stores()
    _, target = await stores(backend.new())
    await add_users(accounts, ALICE, User("root", "admin"))
    await accounts.add_token("alice", "laptop", "t1", at(1))
    await accounts.add_token("alice", "ci", "t2", at(2), expires_at=at(90))
    await accounts.touch_token((await accounts.tokens("alice"))[0].id, at(5))
    users, tokens = await accounts.export()
    assert users == [UserRow("alice", "user", "hash-of-alice", CREATED),
                     UserRow("root", "admin", "hash-of-root", CREATED)]
    assert tokens == [TokenRow("alice", "laptop", "t1", at(1), at(5), None),
                      TokenRow("alice", "ci", "t2", at(2), None, at(90))]
    assert await target.copy_in(users, tokens) == (2, 2)
    assert await target.export() == (users, tokens)
    assert await target.password_hash("root") == (User("root", "admin"), "hash-of-root")
    assert [token.label for token in await target.tokens("alice")] == ["laptop", "ci"]
    signed_in, token = await target.token_user("t2")
    assert (signed_in, token.expires_at) == (ALICE, at(90))
    # A token used meanwhile is still the same token.
    await target.touch_token(token.id, at(7))
    assert await target.copy_in(users, tokens) == (0, 0)


async def test_accounts_that_differ_are_a_conflict_and_nothing_is_written(backend, stores):
    _, target = await stores()
    await add_users(target, ALICE)
    other_hash = UserRow("alice", "user", "another hash", CREATED)
    for users, tokens in [([UserRow("bob", "user", "h", CREATED), other_hash], []),
                          ([], [TokenRow("bob", "x", "t9", at(1), None, None)])]:
        with pytest.raises(Conflict):
            await target.copy_in(users, tokens)
        assert [user.name for user, _, _ in await target.users()] == ["alice"]
    await target.add_token("alice", "laptop", "t1", at(1))
    with pytest.raises(Conflict, match="token"):
        await target.copy_in([], [TokenRow("alice", "laptop", "t1", at(1), None, at(99))])


async def test_text_fields_and_the_cover_come_back_as_stored(db, listed):
    # Every row of `library()` read back whole: tags, description and cover included.
    stored = {r.name: r for r in listed}
    records, _, _ = await db.search(ListQuery(limit=1000))
    assert {r.name: r for r in records} == stored
    for r in listed[:5]:
        assert await db.get(r.name) == r
