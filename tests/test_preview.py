"""GET /preview: what a player plays. The file itself where every browser
plays it, otherwise a preview made once and kept beside it."""

import io
from dataclasses import replace

import numpy as np
import pytest
import soundfile

import audiofiles
from audioserver.config import Config
from audioserver.media.preview import PREVIEW_VERSION
from stored import stored_names

PROBE_TIMEOUT = 10


@pytest.fixture
def config(config) -> Config:
    return replace(config, probe_timeout=PROBE_TIMEOUT)


async def preview(client, name, method="GET", **headers):
    return await client.request(method, "/preview", params={"name": name}, headers=headers)


async def sidecars(library, record) -> list[str]:
    return sorted(name.split(".", 1)[1] for name in await stored_names(library.storage)
                  if name.startswith(record.storage_key + ".") and not name.endswith(".meta"))


def decoded(data: bytes) -> tuple[np.ndarray, int]:
    return soundfile.read(io.BytesIO(data), always_2d=True)


# (name, bytes): the formats browsers play as they are.
NATIVE = {
    "pcm16.wav": lambda: audiofiles.encode(1.0, "WAV", "PCM_16", channels=2),
    "pcm24.wav": lambda: audiofiles.encode(1.0, "WAV", "PCM_24"),
    "float.wav": lambda: audiofiles.encode(1.0, "WAV", "FLOAT"),
    "a.flac": lambda: audiofiles.encode(1.0, "FLAC"),
    "a.ogg": lambda: audiofiles.encode(1.0, "OGG", "VORBIS"),
    "a.opus": lambda: audiofiles.encode(1.0, "OGG", "OPUS", samplerate=48000),
    "xing.mp3": lambda: audiofiles.encode(1.0, "MP3"),
    "cbr.mp3": lambda: audiofiles.lame_mp3(3.0, vbr=False),
}


@pytest.mark.parametrize("name", NATIVE)
async def test_what_browsers_play_is_the_file_itself(client, upload, library, name):
    data = NATIVE[name]()
    await upload(name, data)
    response = await preview(client, name)
    assert response.status == 200, await response.text()
    assert await response.read() == data
    record = await library.db.get(name)
    assert response.headers["Content-Type"] == record.content_type
    assert response.headers["ETag"] == f'"preview{PREVIEW_VERSION}-{record.sha256}"'
    assert response.headers["Content-Disposition"].startswith("inline;")
    kept = await sidecars(library, record)
    assert not [suffix for suffix in kept if suffix.endswith((".mp3", ".flac"))]


# (name, bytes, the preview's media type): the formats that get a preview.
PREVIEWED = {
    "a.aiff": (lambda: audiofiles.encode(2.0, "AIFF", channels=2), "audio/mpeg"),
    "a.au": (lambda: audiofiles.encode(2.0, "AU"), "audio/mpeg"),
    "a.caf": (lambda: audiofiles.encode(2.0, "CAF"), "audio/mpeg"),
    "a.w64": (lambda: audiofiles.encode(2.0, "W64"), "audio/mpeg"),
    "a.rf64": (lambda: audiofiles.encode(2.0, "RF64"), "audio/mpeg"),
    "ulaw.wav": (lambda: audiofiles.encode(2.0, "WAV", "ULAW"), "audio/mpeg"),
    "alaw.wav": (lambda: audiofiles.encode(2.0, "WAV", "ALAW"), "audio/mpeg"),
    "u8.wav": (lambda: audiofiles.encode(2.0, "WAV", "PCM_U8"), "audio/mpeg"),
    "ex.wav": (lambda: audiofiles.encode(2.0, "WAVEX"), "audio/mpeg"),
    "six.wav": (lambda: audiofiles.encode(2.0, "WAV", channels=6, samplerate=22050), "audio/mpeg"),
    "vbr.mp3": (lambda: audiofiles.lame_mp3(20.0), "audio/mpeg"),
    "hi.aiff": (lambda: audiofiles.encode(2.0, "AIFF", samplerate=96000), "audio/flac"),
}


@pytest.mark.parametrize("name", PREVIEWED)
async def test_the_others_get_a_preview_of_the_same_length(client, upload, library, name):
    make, content_type = PREVIEWED[name]
    data = make()
    await upload(name, data)
    record = await library.db.get(name)
    response = await preview(client, name)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Disposition"].startswith("inline;")
    body = await response.read()
    assert body != data
    # What a player reads from the header is the file's length: libsndfile
    # takes an MP3's from its Xing header, as browsers do.
    info = soundfile.info(io.BytesIO(body))
    assert info.samplerate == record.samplerate
    assert info.channels == (1 if record.channels > 2 else record.channels)
    assert abs(info.duration - record.duration) < 0.1
    samples, _ = decoded(body)
    assert np.abs(samples).max() > 0.2  # the tone, not silence
    # /download still gives the original bytes.
    download = await client.get("/download", params={"name": name})
    assert await download.read() == data


async def test_made_once_kept_beside_the_file_and_removed_with_it(client, upload, library):
    await upload("a.aiff", audiofiles.encode(2.0, "AIFF"))
    record = await library.db.get("a.aiff")
    first = await (await preview(client, "a.aiff")).read()
    assert (await sidecars(library, record)) == [f"preview{PREVIEW_VERSION}.mp3"]
    # Served from the sidecar: change it and the change shows.
    await library.storage.write_sidecar(record.storage_key, f"preview{PREVIEW_VERSION}.mp3",
                                        b"kept" + first[4:])
    assert (await (await preview(client, "a.aiff")).read())[:4] == b"kept"
    assert (await client.delete("/delete", params={"name": "a.aiff"})).status == 204
    assert await stored_names(library.storage) == []
    assert (await preview(client, "a.aiff")).status == 404


async def test_ranges_head_and_conditional_requests(client, upload):
    await upload("a.aiff", audiofiles.encode(2.0, "AIFF"))
    whole = await preview(client, "a.aiff")
    body = await whole.read()
    etag = whole.headers["ETag"]
    part = await preview(client, "a.aiff", Range="bytes=10-19")
    assert part.status == 206 and await part.read() == body[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    head = await preview(client, "a.aiff", "HEAD")
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(body)
    assert await head.read() == b""
    assert (await preview(client, "a.aiff", **{"If-None-Match": etag})).status == 304
    assert (await preview(client, "a.aiff", Range=f"bytes={len(body)}-")).status == 416
    # The original's ETag is another: the preview is not the file.
    download = await client.get("/download", params={"name": "a.aiff"})
    assert download.headers["ETag"] != etag


@pytest.mark.parametrize("backend", ["sqlite"])  # bytes changed on the disk
async def test_a_file_that_cannot_be_decoded_is_422_and_remembered(client, upload, library):
    good = audiofiles.encode(2.0, "AIFF")
    await upload("a.aiff", good)
    record = await library.db.get("a.aiff")
    # Its bytes replaced behind the server's back (as test_waveform does).
    path = library.storage.local_path(record.storage_key)
    path.unlink()
    path.write_bytes(b"this is not audio at all" * 100)
    first = await preview(client, "a.aiff")
    assert first.status == 422
    problem = await first.json()
    assert "a.aiff" in problem["detail"]
    # Not tried again: even good bytes now get the remembered answer.
    path.unlink()
    path.write_bytes(good)
    again = await preview(client, "a.aiff")
    assert again.status == 422 and (await again.json())["detail"] == problem["detail"]


async def test_unknown_and_missing_names(client):
    assert (await preview(client, "ghost.aiff")).status == 404
    assert (await client.get("/preview")).status == 400


async def test_the_info_page_says_a_copy_is_being_made_only_where_one_is(
        client, upload, browser_headers):
    await upload("a.aiff", audiofiles.encode(1.0, "AIFF"))
    await upload("a.wav", audiofiles.encode(1.0, "WAV"))
    aiff = await (await client.get("/info", params={"name": "a.aiff"},
                                   headers=browser_headers)).text()
    assert 'id="preview-status"' in aiff and "Preparing a copy your browser can play" in aiff
    wav = await (await client.get("/info", params={"name": "a.wav"},
                                  headers=browser_headers)).text()
    assert 'id="preview-status"' not in wav
