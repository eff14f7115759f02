"""Tags and cover art: read at upload and import, in the metadata object,
searched by q, filtered by artist and album, the cover at its own URL."""

import io

import soundfile
from mutagen.flac import FLAC, Picture

import audiofiles
from serverprocess import command

TAGS = {"title": "Blue Whale", "artist": "Ünder Sea", "album": "Deep", "track": "3/12",
        "date": "2021", "genre": "Field recording", "comment": "hydrophone at dawn"}


def tagged_mp3(cover: bytes | None = None, **tags) -> bytes:
    return audiofiles.with_id3(audiofiles.encode(1.0, "MP3"), cover=cover, **(tags or TAGS))


def with_libsndfile_strings(format: str, **strings) -> bytes:
    """A file whose tags libsndfile writes: RIFF INFO in a WAV, text chunks
    in an AIFF, Vorbis comments in a FLAC."""
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", 44100, 1, format=format) as audio:
        for name, value in strings.items():
            setattr(audio, name, value)
        audio.write(audiofiles.tone(0.5))
    return buffer.getvalue()


def flac_with_picture(image: bytes, mime: str = "image/png") -> bytes:
    buffer = io.BytesIO(with_libsndfile_strings("FLAC", title="Pictured"))
    flac = FLAC(buffer)
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, mime, image
    flac.add_picture(picture)
    buffer.seek(0)
    flac.save(buffer)
    return buffer.getvalue()


async def test_id3_tags_are_in_the_metadata_object(client, upload):
    created = await (await upload("whale.mp3", tagged_mp3())).json()
    assert {field: created[field] for field in TAGS} == TAGS
    assert created["description"] is None and created["cover"] is None
    info = await (await client.get("/info", params={"name": "whale.mp3"})).json()
    assert info == created


async def test_riff_info_aiff_chunks_and_vorbis_comments(client, upload):
    for name, format in (("info.wav", "WAV"), ("chunks.aiff", "AIFF"), ("comments.flac", "FLAC")):
        data = with_libsndfile_strings(format, title=f"{format} title", artist="Someone")
        body = await (await upload(name, data)).json()
        assert (body["title"], body["artist"]) == (f"{format} title", "Someone"), name


async def test_the_cover_art_has_its_own_url(client, upload):
    image = audiofiles.png(padding=5000)
    body = await (await upload("covered.mp3", tagged_mp3(cover=image))).json()
    assert body["cover"] == "image/png"
    response = await client.get("/cover", params={"name": "covered.mp3"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert await response.read() == image
    again = await client.get("/cover", params={"name": "covered.mp3"},
                             headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    # A FLAC's picture block too.
    body = await (await upload("pictured.flac", flac_with_picture(image))).json()
    assert body["cover"] == "image/png" and body["title"] == "Pictured"


async def test_a_picture_that_is_not_an_image_is_not_served(client, upload):
    page = b"<html><script>alert(1)</script></html>"
    body = await (await upload("sneaky.mp3", tagged_mp3(cover=page))).json()
    assert body["cover"] is None
    response = await client.get("/cover", params={"name": "sneaky.mp3"})
    assert response.status == 404
    assert "no cover art" in (await response.json())["detail"]
    # And what says it is a PNG is checked by its bytes.
    body = await (await upload("jpeg.flac", flac_with_picture(b"\xff\xd8\xff\xe0" + bytes(100),
                                                              "image/png"))).json()
    assert body["cover"] == "image/jpeg"


async def test_q_searches_tags_and_the_list_filters_by_artist_and_album(client, upload):
    await upload("whale.mp3", tagged_mp3())
    await upload("other.mp3", tagged_mp3(title="Gull", artist="Sky", album="Deep"))
    await upload("plain.wav")

    async def names(**params) -> list[str]:
        response = await client.get("/list", params=params)
        assert response.status == 200, await response.text()
        return [item["name"] for item in await response.json()]

    assert await names(q="HYDROPHONE") == ["whale.mp3"]
    assert await names(q="ünder") == ["whale.mp3"]
    assert await names(q="plain") == ["plain.wav"]
    assert await names(artist="Ünder Sea") == ["whale.mp3"]
    assert await names(album="Deep") == ["other.mp3", "whale.mp3"]
    assert await names(album="Deep", artist="Sky") == ["other.mp3"]
    assert await names(artist="") == ["other.mp3", "plain.wav", "whale.mp3"]


async def test_the_info_page_shows_the_tags_and_the_cover(client, upload, browser_headers):
    await upload("whale.mp3", tagged_mp3(cover=audiofiles.png(), **TAGS))
    response = await client.get("/info", params={"name": "whale.mp3"}, headers=browser_headers)
    html = await response.text()
    for value in ("Blue Whale", "Field recording", "hydrophone at dawn", "3/12"):
        assert value in html
    assert 'href="/list?artist=%C3%9Cnder+Sea"' in html
    assert 'src="/cover?name=whale.mp3"' in html


async def test_import_reads_tags_too(client, config, tmp_path):
    path = tmp_path / "imported.mp3"
    path.write_bytes(tagged_mp3(cover=audiofiles.png()))
    done = command(config, "import", str(path))
    assert done.returncode == 0, done.stderr
    body = await (await client.get("/info", params={"name": "imported.mp3"})).json()
    assert body["title"] == "Blue Whale" and body["cover"] == "image/png"
    cover = await client.get("/cover", params={"name": "imported.mp3"})
    assert cover.status == 200


async def test_webp_is_served_and_a_cover_over_2_mib_is_not_kept(client, upload):
    webp = b"RIFF" + (100).to_bytes(4, "little") + b"WEBPVP8 " + bytes(92)
    body = await (await upload("webp.flac", flac_with_picture(webp, "image/webp"))).json()
    assert body["cover"] == "image/webp"
    response = await client.get("/cover", params={"name": "webp.flac"})
    assert response.headers["Content-Type"] == "image/webp" and await response.read() == webp
    large = audiofiles.png(padding=2 * 1024 * 1024)
    data = io.BytesIO(flac_with_picture(large))  # a stream: aiohttp warns of large bytes
    body = await (await upload("large.flac", data)).json()
    assert body["cover"] is None and body["title"] == "Pictured"


async def test_the_library_shows_title_and_artist(client, upload, browser_headers):
    await upload("whale.mp3", tagged_mp3(**TAGS))
    await upload("plain.wav")
    response = await client.get("/list", headers=browser_headers)
    html = await response.text()
    assert '<span class="tags">Blue Whale · Ünder Sea</span>' in html
    assert html.count('class="tags"') == 1
