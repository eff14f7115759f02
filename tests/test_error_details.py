"""Error details are written for people: what went wrong and what to do,
never libsndfile's internals (those go to the log) nor a path of the machine."""

import pytest

import audiofiles

GARBAGE = b"this is not audio at all" * 100


async def replace_stored(library, name: str, data: bytes | None) -> str:
    """Swap the stored bytes behind the server's back; None: a directory."""
    path = library.storage.local_path((await library.db.get(name)).storage_key)
    path.unlink()
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("backend", ["sqlite"])  # bytes changed on the disk
@pytest.mark.parametrize("route", ["/waveform", "/preview"])
async def test_an_undecodable_file_says_what_it_means_and_what_to_do(
        client, upload, library, capfd, route):
    await upload("a.aiff", audiofiles.encode(1.0, "AIFF"))
    await replace_stored(library, "a.aiff", GARBAGE)
    response = await client.get(route, params={"name": "a.aiff"})
    assert response.status == 422
    detail = (await response.json())["detail"]
    assert "libsndfile" not in detail and "Format not recognised" not in detail
    assert "not in any audio format this server reads" in detail
    assert "Download it" in detail
    # The technical cause is in the log (the parser's, on the server's stderr).
    assert "Format not recognised" in capfd.readouterr().err


async def test_a_refused_upload_says_it_in_words(client, upload):
    response = await upload("noise.wav", GARBAGE)
    assert response.status == 415
    detail = (await response.json())["detail"]
    assert "libsndfile" not in detail and "send WAV, FLAC" in detail


@pytest.mark.parametrize("backend", ["sqlite"])  # a directory where the file was
@pytest.mark.parametrize("route", ["/download", "/preview", "/waveform", "/cover", "/info"])
async def test_no_answer_names_a_path_of_the_machine(client, upload, library, config,
                                                     browser_headers, route):
    await upload("a.aiff", audiofiles.encode(1.0, "AIFF"))
    path = await replace_stored(library, "a.aiff", None)
    for headers in ({}, browser_headers):
        response = await client.get(route, params={"name": "a.aiff"}, headers=headers)
        body = await response.text()
        assert str(config.data_dir) not in body and path not in body, (route, response.status)
        if response.status >= 400:
            assert "detail" in body or "<h1" in body
