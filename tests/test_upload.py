import hashlib
import io
import os

import aiohttp
import numpy as np
import pytest

import audiofiles
from stored import stored_files

PROBLEM = "application/problem+json"


def form(*files: tuple[str, bytes], field: str = "file") -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, body in files:
        data.add_field(field, io.BytesIO(body), filename=name,
                       content_type="application/octet-stream")
    return data


def handmade_form(filename: str, body: bytes) -> dict:
    """A multipart body with the filename exactly as given (aiohttp's client
    would percent-encode a '/')."""
    data = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="'
            + filename.encode() + b'"\r\n\r\n' + body + b"\r\n--xyz--\r\n")
    return {"data": data, "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}}


async def problem_of(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body = await response.json()
    assert body["status"] == status and body["detail"]
    return body


async def test_raw_put_answers_201_with_location_and_metadata(client, upload):
    data = audiofiles.wav(2.0, samplerate=48000, channels=2)
    response = await upload("a song.wav", data)
    assert response.status == 201
    assert response.headers["Location"] == "/info?name=a+song.wav"
    meta = await response.json()
    assert meta == {
        "name": "a song.wav", "duration": 2.0, "frames": 96000, "samplerate": 48000,
        "channels": 2, "format": "WAV", "subtype": "PCM_16", "content_type": "audio/wav",
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "created_at": meta["created_at"], "owner": None, "visibility": "public",
        # No tags in this file (tests/test_tags.py has files with them).
        "title": None, "artist": None, "album": None, "track": None, "date": None,
        "genre": None, "comment": None, "description": None, "cover": None,
    }
    assert meta["created_at"].endswith("Z")
    followed = await client.get(response.headers["Location"])
    assert await followed.json() == meta


async def test_raw_post_and_chunked_body(client):
    data = audiofiles.wav(0.5)

    async def chunks():
        for start in range(0, len(data), 1000):
            yield data[start:start + 1000]

    response = await client.post("/upload", params={"name": "chunked.wav"}, data=chunks())
    assert response.status == 201
    assert (await response.json())["sha256"] == hashlib.sha256(data).hexdigest()


async def test_multipart_several_files_answer_a_list(client):
    response = await client.post("/upload", data=form(
        ("one.wav", audiofiles.wav(1)), ("two.flac", audiofiles.encode(2, "FLAC")),
    ))
    assert response.status == 201
    body = await response.json()
    assert [(m["name"], m["format"], m["duration"]) for m in body] == [
        ("one.wav", "WAV", 1.0), ("two.flac", "FLAC", 2.0),
    ]
    assert response.headers["Location"] == "/info?name=one.wav"


async def test_multipart_one_file_answers_an_object(client):
    response = await client.post("/upload", data=form(("one.wav", audiofiles.wav())))
    assert (await response.json())["name"] == "one.wav"


@pytest.mark.parametrize("format, subtype, expected", [
    ("WAV", "PCM_U8", ("WAV", "PCM_U8", "audio/wav")),
    ("WAV", "PCM_24", ("WAV", "PCM_24", "audio/wav")),
    ("WAV", "PCM_32", ("WAV", "PCM_32", "audio/wav")),
    ("WAV", "FLOAT", ("WAV", "FLOAT", "audio/wav")),
    ("WAV", "ULAW", ("WAV", "ULAW", "audio/wav")),
    ("WAV", "ALAW", ("WAV", "ALAW", "audio/wav")),
    ("WAVEX", "PCM_16", ("WAVEX", "PCM_16", "audio/wav")),
    ("RF64", "PCM_16", ("RF64", "PCM_16", "audio/wav")),
    ("W64", "PCM_16", ("W64", "PCM_16", "audio/x-w64")),
    ("FLAC", "PCM_16", ("FLAC", "PCM_16", "audio/flac")),
    ("OGG", "VORBIS", ("OGG", "VORBIS", "audio/ogg")),
    ("OGG", "OPUS", ("OGG", "OPUS", "audio/ogg")),
    ("MP3", "MPEG_LAYER_III", ("MP3", "MPEG_LAYER_III", "audio/mpeg")),
    ("AIFF", "PCM_16", ("AIFF", "PCM_16", "audio/aiff")),
    ("CAF", "PCM_16", ("CAF", "PCM_16", "audio/x-caf")),
    ("AU", "PCM_16", ("AU", "PCM_16", "audio/basic")),
])
async def test_every_format_libsndfile_reads_is_accepted(upload, format, subtype, expected):
    samplerate = 48000 if subtype == "OPUS" else 44100  # Opus only knows 48 kHz and kin
    data = audiofiles.encode(3.0, format, subtype, samplerate=samplerate)
    # A misleading extension: the content decides, never the name.
    response = await upload("file.bin", data)
    assert response.status == 201, await response.text()
    meta = await response.json()
    assert (meta["format"], meta["subtype"], meta["content_type"]) == expected
    assert meta["samplerate"] == samplerate
    assert meta["duration"] == pytest.approx(3.0, abs=0.06)


async def test_vbr_mp3_without_header_gets_its_true_duration(upload):
    response = await upload("vbr.mp3", audiofiles.lame_mp3(45.0, vbr=True))
    assert response.status == 201
    # libsndfile alone says about 9.5 s for this file.
    assert (await response.json())["duration"] == pytest.approx(45.0, abs=0.1)


@pytest.mark.parametrize("claimed", [10 * 3600 * 44100, 0, 100 * 44100],
                         ids=["ten-hours", "unknown", "a-believable-lie"])
async def test_a_flac_header_claiming_more_than_its_bytes_hold_is_not_believed(
        client, upload, claimed):
    response = await upload("lies.flac", audiofiles.flac_claiming(1.0, claimed))
    assert response.status == 201, await response.text()
    meta = await response.json()
    assert (meta["frames"], meta["duration"]) == (44100, 1.0)  # as the last frame says
    listed = await client.get("/list", params={"maxduration": "10"})
    assert [item["name"] for item in await listed.json()] == ["lies.flac"]
    listed = await client.get("/list", params={"minduration": "50"})
    assert await listed.json() == []


async def test_a_flac_whose_last_frame_says_nothing_is_decoded_to_count(upload):
    # STREAMINFO says "unknown", and that the block size varies: then the
    # frame headers number frames, not samples, and only decoding can count.
    data = bytearray(audiofiles.flac_claiming(1.0, 0))
    data[8:10] = (16).to_bytes(2, "big")  # STREAMINFO's minimum block size
    response = await upload("unknown.flac", bytes(data))
    assert response.status == 201, await response.text()
    assert (await response.json())["frames"] == 44100


async def test_an_ogg_granule_claiming_more_than_its_bytes_hold_is_not_believed(upload):
    data = audiofiles.encode(1.0, "OGG", "OPUS", samplerate=48000)
    response = await upload("lies.opus", ogg_with_last_granule(data, 10 * 3600 * 48000))
    assert response.status == 201, await response.text()
    # Decoded, without the end trimming only the (lying) granule could give.
    assert (await response.json())["duration"] == pytest.approx(1.0, abs=0.02)


def ogg_with_last_granule(data: bytes, granule: int) -> bytes:
    """`data` with its last Ogg page's granule position replaced, and the
    page's checksum made right again (libogg drops a page whose is wrong)."""
    data = bytearray(data)
    page = data.rfind(b"OggS")
    data[page + 6:page + 14] = granule.to_bytes(8, "little")
    data[page + 22:page + 26] = bytes(4)  # the checksum covers the page with it zeroed
    data[page + 22:page + 26] = ogg_crc(data[page:]).to_bytes(4, "little")
    return bytes(data)


def ogg_crc(data: bytes) -> int:
    """CRC-32 as Ogg has it: polynomial 0x04C11DB7, not reflected, from zero."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


@pytest.mark.parametrize("data, why", [
    (b"just some text, not audio\n" * 100, "text"),
    (b"", "empty"),
    (audiofiles.wav(1)[:30], "a truncated header"),
    (os.urandom(20_000), "noise"),
])
async def test_not_audio_is_415_and_nothing_is_kept(upload, library, data, why):
    body = await problem_of(await upload("x.wav", data), 415)
    assert "x.wav" in body["detail"]
    assert await stored_files(library) == []
    assert not await library.db.exists("x.wav")


async def test_a_sync_word_then_garbage_is_not_readable_audio(upload, library):
    # libsndfile takes it for an MP3 and then calls it "not a regular file".
    data = b"\xff\xfb\x90\x64" + np.random.default_rng(1).bytes(20_000)
    body = await problem_of(await upload("x.mp3", data), 415)
    assert "not readable audio" in body["detail"]
    assert "regular file" not in body["detail"] and "pipe" not in body["detail"]
    assert await stored_files(library) == []


async def test_taken_name_is_409_and_the_first_file_stays(client, upload):
    first = await (await upload("a.wav", audiofiles.wav(1))).json()
    body = await problem_of(await upload("a.wav", audiofiles.wav(2)), 409)
    assert body["name"] == "a.wav" and "taken" in body["detail"]
    info = await (await client.get("/info", params={"name": "a.wav"})).json()
    assert info["sha256"] == first["sha256"]


async def test_several_files_are_stored_all_or_none(client, upload, library):
    await upload("taken.wav")
    response = await client.post("/upload", data=form(
        ("new.wav", audiofiles.wav()), ("bad.wav", b"not audio at all"),
    ))
    body = await problem_of(response, 415)
    assert body["name"] == "bad.wav"
    response = await client.post("/upload", data=form(
        ("new.wav", audiofiles.wav()), ("taken.wav", audiofiles.wav()),
    ))
    assert (await problem_of(response, 409))["name"] == "taken.wav"
    assert not await library.db.exists("new.wav")
    assert len(await stored_files(library)) == 2  # taken.wav's own file and its .meta sidecar


async def test_the_same_name_twice_in_one_upload_is_refused(client, library):
    response = await client.post("/upload", data=form(
        ("twin.wav", audiofiles.wav()), ("twin.wav", audiofiles.wav()),
    ))
    assert "twice" in (await problem_of(response, 400))["detail"]
    assert await stored_files(library) == []


@pytest.mark.parametrize("name, reason", [
    ("a/b.wav", "'/'"),
    ("a\\b.wav", "'\\\\'"),
    ("..", "'.' and '..'"),
    (".", "'.' and '..'"),
    ("tab\there.wav", "U+0009"),
    ("nul\x00.wav", "U+0000"),
    ("é" * 128, "255 bytes"),
    ("", "required"),
])
async def test_bad_names_are_refused_never_rewritten(upload, library, name, reason):
    body = await problem_of(await upload(name), 400)
    assert reason in body["detail"]
    assert await stored_files(library) == []


async def test_names_are_kept_as_given_after_nfc(client, upload):
    decomposed = "Cafe\u0301 <b>&amp; 'quotes'.wav"
    response = await upload(decomposed)
    assert (await response.json())["name"] == "Caf\u00e9 <b>&amp; 'quotes'.wav"
    # Either spelling finds it.
    response = await client.get("/info", params={"name": decomposed})
    assert response.status == 200
    assert await (await upload("e" * 255)).json()


async def test_multipart_bad_filename_is_400(client, library):
    response = await client.post("/upload", **handmade_form("../etc/passwd", audiofiles.wav()))
    assert "'/'" in (await problem_of(response, 400))["detail"]
    assert await stored_files(library) == []


async def test_too_large_by_content_length_is_refused_before_the_body(upload, library, config):
    response = await upload("big.wav", io.BytesIO(b"\0" * (config.max_upload_size + 1)))
    body = await problem_of(response, 413)
    assert body["max_upload_size"] == config.max_upload_size
    assert await stored_files(library) == []


async def test_too_large_without_content_length_is_counted(client, library, config):
    async def endless():
        for _ in range(config.max_upload_size // 65536 + 2):
            yield b"\0" * 65536

    response = await client.put("/upload", params={"name": "big.wav"}, data=endless())
    await problem_of(response, 413)
    assert await stored_files(library) == []


async def test_too_large_multipart_part_is_counted(client, library, config):
    # The form as a whole carries a Content-Length; only counting finds the part.
    response = await client.post("/upload", data=form(
        ("small.wav", audiofiles.wav()), ("big.wav", b"\0" * (config.max_upload_size + 1)),
    ))
    assert (await problem_of(response, 413))["name"] == "big.wav"
    assert await stored_files(library) == []


async def test_exactly_the_limit_is_accepted(client, config):
    data = audiofiles.wav(0.1)
    padded = data + b"\0" * (config.max_upload_size - len(data))  # trailing bytes after the data chunk
    response = await client.put("/upload", params={"name": "limit.wav"}, data=io.BytesIO(padded))
    assert response.status == 201, await response.text()


async def test_expect_100_continue_gets_the_final_answer_early(client, upload):
    await upload("taken.wav")
    headers = {"Expect": "100-continue"}
    response = await upload("taken.wav", headers=headers)
    await problem_of(response, 409)
    response = await upload("free.wav", headers=headers)
    assert response.status == 201
    response = await upload("x.wav", headers={"Expect": "something-else"})
    await problem_of(response, 417)


async def test_a_form_without_a_file_part_is_400(client):
    response = await client.post("/upload", data=form(("x.wav", b"1"), field="other"))
    assert "no file" in (await problem_of(response, 400))["detail"]
    response = await client.post("/upload", data=b"raw bytes but no name")
    assert "?name=" in (await problem_of(response, 400))["detail"]


async def test_an_empty_file_field_from_a_browser_is_ignored(client):
    # What a browser sends when the form is submitted with no file chosen.
    response = await client.post("/upload", data=form(("", b"")))
    await problem_of(response, 400)


async def test_malformed_multipart_is_400(client, library):
    request = handmade_form("a.wav", audiofiles.wav())
    request["data"] = request["data"][:-12]  # no closing boundary
    response = await client.post("/upload", **request)
    await problem_of(response, 400)
    assert await stored_files(library) == []


async def test_a_browser_form_post_is_redirected_to_the_page(client, browser_headers):
    response = await client.post("/upload", data=form(("page.wav", audiofiles.wav())),
                                 headers=browser_headers, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/info?name=page.wav"
    response = await client.post("/upload", data=form(
        ("x.wav", audiofiles.wav()), ("y.wav", audiofiles.wav()),
    ), headers=browser_headers, allow_redirects=False)
    assert response.headers["Location"] == "/list"


async def test_a_browser_sees_errors_as_a_page(client, browser_headers):
    response = await client.post("/upload", data=form(("x.txt", b"text")),
                                 headers=browser_headers)
    assert response.status == 415
    assert response.content_type == "text/html"
    assert "x.txt" in await response.text()


async def test_upload_form_page(client):
    response = await client.get("/upload")
    assert response.status == 200
    page = await response.text()
    assert 'enctype="multipart/form-data"' in page and 'name="file"' in page
