"""X-Total-Count and the page come from the same state of the library.

Another connection (as another worker would) adds and removes rows as fast
as it can while the listing is read: every answer must agree with itself.
"""

import asyncio
import itertools

from audioserver.metadata import AudioStore, audio_store
from audioserver.models import AudioRecord

LISTINGS = 300


def record(name: str) -> AudioRecord:
    return AudioRecord(name=name, duration=1.0, frames=44100, samplerate=44100, channels=1,
                       format="WAV", subtype="PCM_16", content_type="audio/wav", size=88244,
                       sha256="0" * 64, created_at="2026-11-25T00:00:00.000000Z", owner=None,
                       visibility="public", storage_key=name.encode().hex())


async def churn(db: AudioStore, stop: asyncio.Event) -> int:
    """Add and remove a row until told to stop; how many times."""
    rounds = 0
    while not stop.is_set():
        await db.insert([record("churn.wav")])
        await db.delete("churn.wav")
        rounds += 1
    return rounds


async def test_the_count_and_the_page_agree_while_another_connection_writes(
        client, config, upload):
    assert (await upload("steady.wav")).status == 201
    other = audio_store(config)
    await other.open()
    stop = asyncio.Event()
    writer = asyncio.create_task(churn(other, stop))
    try:
        seen = set()
        # At least LISTINGS rounds, and on until the churning row was seen
        # both there and gone (a busy machine may take longer to show both).
        for listed in itertools.count():
            if listed >= LISTINGS and seen >= {0, 1}:
                break
            assert listed < 20 * LISTINGS, f"the churn never showed both states: {seen}"
            for params in ({}, {"q": "churn"}):
                response = await client.get("/list", params={**params, "limit": "1000"})
                assert response.status == 200
                items = await response.json()
                total = int(response.headers["X-Total-Count"])
                # A first page that is not full holds every match: exactly the count.
                assert len(items) == total, (params, [item["name"] for item in items], total)
                seen.add(total)
    finally:
        stop.set()
        rounds = await writer
        await other.close()
    assert rounds > 0
