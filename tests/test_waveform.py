"""GET /waveform: peaks in BBC audiowaveform's JSON layout, cached beside the file."""

import asyncio
import os
from dataclasses import replace

import numpy as np
import pytest

import audiofiles
from stored import stored_names
from audioserver.config import Config
from audioserver.errors import Undecodable

# The parser's time limit here: short, so that a hung parser costs little.
PROBE_TIMEOUT = 3


@pytest.fixture
def config(config) -> Config:
    return replace(config, probe_timeout=PROBE_TIMEOUT)


def ramp_wav(seconds: float, samplerate: int = 8000) -> bytes:
    """Loudness rising linearly from silence: each point's peak is predictable."""
    import io

    import soundfile

    frames = int(seconds * samplerate)
    envelope = np.linspace(0, 1, frames, endpoint=False)
    signs = np.where(np.arange(frames) % 2 == 0, 1.0, -1.0)
    buffer = io.BytesIO()
    soundfile.write(buffer, (envelope * signs * 0.5)[:, None].repeat(2, axis=1), samplerate,
                    format="WAV", subtype="FLOAT")
    return buffer.getvalue()


async def peaks(client, name="a.wav", headers=None, **params):
    return await client.get("/waveform", params={"name": name, **params}, headers=headers)


async def test_the_layout_and_the_values(client, upload):
    await upload("a.wav", ramp_wav(10.0))
    response = await peaks(client, points="100")
    assert response.status == 200
    body = await response.json()
    assert {key: body[key] for key in body if key != "data"} == {
        "version": 2, "channels": 1, "sample_rate": 8000, "samples_per_pixel": 800,
        "bits": 16, "length": 100,
    }
    data = np.array(body["data"]).reshape(-1, 2)
    lows, highs = data[:, 0], data[:, 1]
    assert (lows <= highs).all()
    # Point i covers loudness up to (i + 1) / 100 of 0.5 full scale.
    expected = np.round((np.arange(100) + 1) / 100 * 0.5 * 32767)
    assert np.abs(highs - expected).max() <= 200
    assert np.abs(-lows - expected).max() <= 200


async def test_default_and_edge_point_counts(client, upload):
    await upload("a.wav", audiofiles.wav(2.0))
    assert (await (await peaks(client)).json())["length"] == 1000
    assert (await (await peaks(client, points="1")).json())["length"] == 1
    # More points than frames: one frame each.
    await upload("tiny.wav", audiofiles.wav(0.01))
    body = await (await peaks(client, "tiny.wav", points="10000")).json()
    assert body["samples_per_pixel"] == 1 and body["length"] == 441
    # Points that do not divide the frames evenly: still exactly that many.
    assert (await (await peaks(client, points="999")).json())["length"] == 999


@pytest.mark.parametrize("points", ["0", "10001", "-5", "many", "1.5"])
async def test_bad_points_are_400(client, upload, points):
    await upload("a.wav")
    response = await peaks(client, points=points)
    assert response.status == 400
    assert "points" in (await response.json())["detail"]


async def test_unknown_and_missing_names(client):
    assert (await peaks(client, "ghost.wav")).status == 404
    response = await client.get("/waveform")
    assert response.status == 400


async def test_computed_once_cached_with_a_strong_etag_and_removed_with_the_file(
        client, upload, library):
    await upload("a.wav", audiofiles.wav(3.0))
    first = await peaks(client, points="50")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    record = await library.db.get("a.wav")
    sidecars = [name.split(".", 1)[1] for name in await stored_names(library.storage)
                if name.startswith(record.storage_key + ".") and not name.endswith(".meta")]
    assert [suffix.endswith("-50.json") for suffix in sidecars] == [True]
    # Served from the sidecar: change it and the change shows.
    await library.storage.write_sidecar(record.storage_key, sidecars[0], b'{"cached": true}')
    assert await (await peaks(client, points="50")).json() == {"cached": True}
    response = await peaks(client, points="50", headers={"If-None-Match": etag})
    assert response.status == 304
    other = await peaks(client, points="51")
    assert other.headers["ETag"] != etag
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 204
    assert await stored_names(library.storage) == []


async def test_mp3_peaks_cover_the_counted_length(client, upload):
    await upload("vbr.mp3", audiofiles.lame_mp3(20.0))
    body = await (await peaks(client, "vbr.mp3", points="200")).json()
    assert body["length"] == 200
    assert max(body["data"]) > 5000  # the tone is there to the end
    assert max(body["data"][-20:]) > 5000


@pytest.mark.parametrize("claimed", [10 * 3600 * 44100, 0], ids=["ten-hours", "unknown"])
async def test_a_flac_with_a_lying_header_has_peaks_to_its_true_end(client, upload, claimed):
    await upload("lies.flac", audiofiles.flac_claiming(1.0, claimed))
    response = await peaks(client, "lies.flac", points="10")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["samples_per_pixel"] == 4410
    assert min(body["data"][1::2]) > 5000  # the tone in every point: none past the end


async def test_an_mp3_with_a_xing_header_has_peaks(client, upload):
    # libsndfile writes the header; reading to its end used to seek and fail.
    await upload("tagged.mp3", audiofiles.encode(3.0, "MP3"))
    response = await peaks(client, "tagged.mp3", points="30")
    assert response.status == 200, await response.text()
    assert min((await response.json())["data"][1::2]) > 5000


# Cover art makes an ID3v2 tag of tens of kilobytes: more than libsndfile
# will skip when the file comes through a pipe, which cannot seek past it.
BIG_COVER = 100_000


@pytest.mark.parametrize("made_by", ["libsndfile-xing", "lame-cbr-no-header", "lame-vbr-no-header"])
async def test_an_mp3_behind_a_large_id3_tag_has_peaks(client, upload, made_by):
    if made_by == "libsndfile-xing":
        data = audiofiles.encode(3.0, "MP3")
    else:
        data = audiofiles.lame_mp3(3.0, vbr=made_by.startswith("lame-vbr"))
    data = audiofiles.with_id3(data, cover=audiofiles.png(padding=BIG_COVER), title="T")
    await upload("covered.mp3", data)
    response = await peaks(client, "covered.mp3", points="30")
    assert response.status == 200, await response.text()
    body = await response.json()
    # The tone from the first point to the last: nothing cut short.
    assert min(body["data"][1::2]) > 5000


def test_blocks_give_the_peaks_of_one_read(tmp_path, monkeypatch):
    """Streaming never holds the file: reads stay within a block, and the
    stretches that straddle two blocks come out as if read at once."""
    import soundfile

    from audioserver.media import sndfile

    path = tmp_path / "ramp.wav"
    path.write_bytes(ramp_wav(3.0))
    frames = 24000
    whole = sndfile.peaks(path, 70, frames, "WAV")
    reads = []
    original_read = soundfile.SoundFile.read

    def counting_read(self, frames=-1, *args, **kwargs):
        reads.append(frames)
        return original_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sndfile, "PEAKS_BLOCK_FRAMES", 1001)
    monkeypatch.setattr(soundfile.SoundFile, "read", counting_read)
    assert sndfile.peaks(path, 70, frames, "WAV") == whole
    assert len(reads) > 20 and set(reads) == {1001}


async def test_channels_are_mixed_down_to_one(client, upload):
    import io

    import soundfile

    tone = audiofiles.tone(1.0, 8000)[:, 0]
    buffer = io.BytesIO()
    soundfile.write(buffer, np.column_stack([tone, -tone]), 8000, format="WAV")
    await upload("opposed.wav", buffer.getvalue())
    await upload("same.wav", audiofiles.wav(1.0, samplerate=8000, channels=2))
    opposed = await (await peaks(client, "opposed.wav", points="10")).json()
    assert opposed["channels"] == 1 and set(opposed["data"]) == {0}
    same = await (await peaks(client, "same.wav", points="10")).json()
    assert max(same["data"]) == pytest.approx(0.25 * 32767, abs=50)


async def test_a_file_without_frames_has_a_flat_line(client, upload):
    await upload("empty.wav", audiofiles.wav(0.0))
    response = await peaks(client, "empty.wav")
    assert response.status == 200
    body = await response.json()
    assert body["length"] == 1 and body["data"] == [0, 0]


async def test_304_has_no_body_and_the_same_etag(client, upload):
    await upload("a.wav")
    etag = (await peaks(client)).headers["ETag"]
    response = await peaks(client, headers={"If-None-Match": f'"other", {etag}'})
    assert response.status == 304
    assert response.headers["ETag"] == etag and await response.read() == b""


async def test_a_browser_gets_json_too(client, upload, browser_headers):
    await upload("a.wav")
    response = await peaks(client, headers=browser_headers, points="5")
    assert response.content_type == "application/json"
    assert (await response.json())["length"] == 5


async def test_a_delete_during_the_computation_leaves_nothing_behind(client, upload, library,
                                                                    monkeypatch):
    await upload("a.wav")
    compute = library.waveforms.pool.peaks

    async def compute_then_delete(*args, **kwargs):
        result = await compute(*args, **kwargs)
        await library.remove("a.wav")
        return result

    monkeypatch.setattr(library.waveforms.pool, "peaks", compute_then_delete)
    assert (await peaks(client)).status == 200
    assert await stored_names(library.storage) == []


# Swaps the stored file behind the server's back: the local disk's own test.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_stored_file_that_cannot_be_opened_shows_no_path(client, upload, library,
                                                                browser_headers, tmp_path):
    for name, data in (("a.wav", audiofiles.wav()), ("b.mp3", audiofiles.lame_mp3(1.0))):
        await upload(name, data)
        record = await library.db.get(name)
        library.storage.path(record.storage_key).unlink()  # lost behind the server's back
        for headers in (None, browser_headers):
            response = await peaks(client, name, headers=headers)
            assert response.status >= 400
            text = await response.text()
            assert name in text
            assert str(tmp_path) not in text and "/audio/" not in text


async def test_nan_and_infinite_samples_stay_in_the_format_range(client, upload):
    """A float WAV may hold NaN and ±Inf: peaks clamp them to full scale
    (Inf) or silence (NaN), never to numbers outside 16 bits."""
    import io

    import soundfile

    samples = np.zeros(8000, dtype=np.float32)
    samples[:2000] = np.nan
    samples[2000:4000] = np.inf
    samples[4000:6000] = -np.inf
    samples[6000:] = 0.5
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 8000, format="WAV", subtype="FLOAT")
    await upload("odd.wav", buffer.getvalue())
    body = await (await peaks(client, "odd.wav", points="4")).json()
    lows, highs = np.array(body["data"]).reshape(-1, 2).T
    assert ((-32768 <= lows) & (lows <= highs) & (highs <= 32767)).all()
    # Full scale is ±32767, as for every other sample.
    assert list(lows) == [0, 32767, -32767, 16384]
    assert list(highs) == [0, 32767, -32767, 16384]


def long_flac(path, hours: float, samplerate: int = 8000) -> int:
    """Silence, then a constant half-scale level in the middle third, then
    silence: hours of audio in a few hundred KB (FLAC stores a constant run
    in a few bytes a block). Returns its length in frames."""
    import soundfile

    frames = int(hours * 3600 * samplerate)
    third = frames // 3
    block = np.empty(1 << 20, dtype=np.int16)
    with soundfile.SoundFile(path, "w", samplerate=samplerate, channels=1, format="FLAC",
                             subtype="PCM_16") as audio:
        for level, length in [(0, third), (16384, third), (0, frames - 2 * third)]:
            block.fill(level)
            for start in range(0, length, len(block)):
                audio.write(block[:min(len(block), length - start)])
    return frames


def test_a_long_file_is_sampled_not_decoded_whole(tmp_path, monkeypatch):
    """Peaks of hours of audio read evenly spaced blocks, a bounded number of
    frames in all, and still show where the sound is."""
    import soundfile

    from audioserver.media import sndfile

    path = tmp_path / "long.flac"
    frames = long_flac(path, hours=3.0)
    assert frames > sndfile.FULL_DECODE_FRAMES
    read = []
    original_read = soundfile.SoundFile.read

    def counting_read(self, *args, **kwargs):
        block = original_read(self, *args, **kwargs)
        read.append(len(block))
        return block

    monkeypatch.setattr(soundfile.SoundFile, "read", counting_read)
    body = sndfile.peaks(path, 300, frames, "FLAC")
    assert sum(read) <= sndfile.SAMPLED_FRAMES
    assert body["length"] == 300 and body["samples_per_pixel"] == frames // 300
    highs = body["data"][1::2]
    # Blocks straddling the level's edges may catch either side.
    assert set(highs[:99]) == {0} and set(highs[101:199]) == {16384}
    assert set(highs[201:]) == {0}


# Failures, hangs and crowds

async def stored_path(library, name: str):
    return library.storage.path((await library.db.get(name)).storage_key)


async def hang_parser_on(library, name: str) -> None:
    """Swap the stored file for a FIFO nobody writes: opening it blocks the
    parser until its time limit, a real hang."""
    path = await stored_path(library, name)
    path.unlink()
    os.mkfifo(path)


async def restore(library, name: str, data: bytes) -> None:
    path = await stored_path(library, name)
    path.unlink()
    path.write_bytes(data)


def count_computations(library, monkeypatch) -> list:
    """Each call of the waveform pool, recorded; the real computation runs."""
    calls = []
    compute = library.waveforms.pool.peaks

    async def counted(*args, **kwargs):
        calls.append(args)
        return await compute(*args, **kwargs)

    monkeypatch.setattr(library.waveforms.pool, "peaks", counted)
    return calls


# Swaps the stored file behind the server's back: the local disk's own test.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_uploads_never_wait_behind_a_waveform(client, upload, library):
    await upload("stuck.wav")
    await hang_parser_on(library, "stuck.wav")
    drawing = asyncio.create_task(peaks(client, "stuck.wav"))
    await asyncio.sleep(0.5)  # the waveform's parser is blocked now
    assert (await upload("next.wav")).status == 201
    assert not drawing.done()
    assert (await drawing).status == 422


# Swaps the stored file behind the server's back: the local disk's own test.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_failed_waveform_is_remembered(client, upload, library):
    good = audiofiles.wav()
    await upload("a.wav", good)
    await restore(library, "a.wav", b"this is not audio at all" * 100)
    first = await peaks(client)
    assert first.status == 422
    problem = await first.json()
    assert "a.wav" in problem["detail"] and "decoded" in problem["detail"]
    # Not tried again: even good bytes now get the remembered answer.
    await restore(library, "a.wav", good)
    again = await peaks(client, points="17")
    assert again.status == 422 and (await again.json())["detail"] == problem["detail"]
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 204
    assert await stored_names(library.storage) == []


# Swaps the stored file behind the server's back: the local disk's own test.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_timed_out_waveform_is_remembered(client, upload, library):
    good = audiofiles.wav()
    await upload("a.wav", good)
    await hang_parser_on(library, "a.wav")
    first = await peaks(client)
    assert first.status == 422
    assert f"longer than {PROBE_TIMEOUT} s" in (await first.json())["detail"]
    await restore(library, "a.wav", good)
    assert (await peaks(client)).status == 422
    # Another file is drawn as usual.
    await upload("b.wav", good)
    assert (await peaks(client, "b.wav")).status == 200


async def test_many_asking_at_once_share_one_computation(client, upload, library,
                                                        monkeypatch):
    await upload("a.wav", audiofiles.wav(5.0))
    calls = count_computations(library, monkeypatch)
    answers = await asyncio.gather(*(peaks(client, points="300") for _ in range(8)))
    assert [answer.status for answer in answers] == [200] * 8
    bodies = {await answer.read() for answer in answers}
    assert len(bodies) == 1 and len(calls) == 1
    assert (await peaks(client, points="300")).status == 200
    assert len(calls) == 1  # from the sidecar now


# Swaps the stored file behind the server's back: the local disk's own test.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_many_asking_at_once_share_one_timeout(client, upload, library, monkeypatch):
    await upload("a.wav")
    await hang_parser_on(library, "a.wav")
    calls = count_computations(library, monkeypatch)
    answers = await asyncio.gather(*(peaks(client) for _ in range(4)))
    assert [answer.status for answer in answers] == [422] * 4
    assert len(calls) == 1


# Swaps the stored file behind the server's back: the local disk's own test.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_requester_going_away_does_not_stop_the_others(upload, library):
    """The shared computation outlives a cancelled requester (a handler
    cancelled at shutdown, say): the others still get their peaks."""
    await upload("a.wav")
    await hang_parser_on(library, "a.wav")  # so that it is still running below
    record = await library.db.get("a.wav")
    first = asyncio.create_task(library.waveforms.peaks_json(record, 300))
    second = asyncio.create_task(library.waveforms.peaks_json(record, 300))
    await asyncio.sleep(0.5)  # both wait for the one computation now
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # Run to its end, the time limit: not cancelled with the first.
    with pytest.raises(Undecodable, match="longer than"):
        await second


async def test_a_small_flac_of_many_hours_is_drawn(client, upload, tmp_path):
    """Ten hours in under a megabyte: decoding it whole would take longer
    than the parser's time limit here; sampled, it is drawn."""
    path = tmp_path / "long.flac"
    long_flac(path, hours=10.0)
    assert (await upload("long.flac", path.read_bytes())).status == 201
    response = await peaks(client, "long.flac", points="30")
    assert response.status == 200
    highs = (await response.json())["data"][1::2]
    assert highs[:9] == [0] * 9 and highs[11:19] == [16384] * 8 and highs[21:] == [0] * 9
