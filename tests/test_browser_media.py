"""Every accepted format plays in a real Chromium, with a waveform drawn.

The browser, the server and the helpers are test_browser.py's (imported
here, they are this module's own: one more server and browser for this file).
"""

import io

import numpy as np
import pytest
import soundfile
from playwright.sync_api import expect

import audiofiles
from test_browser import (  # noqa: F401  (fixtures, found by name)
    audio_property, browser, open_page, page, server, shot, wait_until)

HAVE_METADATA = 1
SECONDS = 3.0


def music(format: str, subtype: str | None = None, samplerate: int = 22050,
          channels: int = 1, seconds: float = SECONDS) -> bytes:
    """Notes that swell and fade, in any format libsndfile writes."""
    t = np.arange(int(seconds * samplerate)) / samplerate
    envelope = np.abs(np.sin(np.pi * t / 1.5)) * (0.3 + 0.6 * (t / seconds))
    wave = envelope * np.sin(2 * np.pi * (220 + 110 * np.floor(t / 1.5)) * t)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.repeat(wave[:, None], channels, axis=1), samplerate,
                    format=format, subtype=subtype)
    return buffer.getvalue()


# One file of every accepted format, as the issue lists them.
FORMATS = {
    "pcm16.wav": lambda: music("WAV", "PCM_16", channels=2),
    "pcm24.wav": lambda: music("WAV", "PCM_24"),
    "float.wav": lambda: music("WAV", "FLOAT"),
    "pcm8.wav": lambda: music("WAV", "PCM_U8"),
    "ulaw.wav": lambda: music("WAV", "ULAW"),
    "alaw.wav": lambda: music("WAV", "ALAW"),
    "six channels.wav": lambda: music("WAV", "PCM_16", channels=6),
    "a.rf64": lambda: music("RF64"),
    "a.w64": lambda: music("W64"),
    "a.aiff": lambda: music("AIFF", channels=2),
    "a.au": lambda: music("AU"),
    "a.caf": lambda: music("CAF"),
    "a.flac": lambda: music("FLAC"),
    "vorbis.ogg": lambda: music("OGG", "VORBIS"),
    "a.opus": lambda: music("OGG", "OPUS", samplerate=48000),
    "xing.mp3": lambda: music("MP3", samplerate=44100),
    # Without a Xing header Chromium estimates the length from the first
    # frame: 20 s of VBR came out at 0:18 before it had a preview.
    "vbr no header.mp3": lambda: audiofiles.lame_mp3(20.0),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_plays_with_a_waveform(page, server, name):
    status, record = server.put(name, FORMATS[name]())
    assert status == 201, record
    page.goto(f"/info?name={name}")
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    wait_until(page, f"document.getElementById('audio').readyState >= {HAVE_METADATA}", 30)
    # The note that a playable copy is being made, where one is, is gone now.
    expect(page.locator("#preview-status")).to_be_hidden()
    assert audio_property(page, "error") is None
    assert audio_property(page, "duration") == pytest.approx(record["duration"], abs=0.1)
    expect(page.locator("#waveform")).to_have_attribute("data-state", "ready")
    # Space on the waveform plays (a key press lets the page start audio).
    page.locator("#waveform").press(" ")
    wait_until(page, "document.getElementById('audio').currentTime > 0.3")
    page.locator("#waveform").press(" ")
    expect(page.locator("#player-status")).to_be_hidden()
    if name in ("a.aiff", "vbr no header.mp3"):
        shot(page, "info-" + name.replace(" ", "-"))


def test_a_file_that_cannot_be_played_says_so_and_offers_the_download(page, server):
    # Stored, then damaged behind the server's back: its preview fails.
    status, record = server.put("broken.aiff", music("AIFF"))
    assert status == 201
    key = record_key(server, "broken.aiff")
    path = server.data_dir / "audio" / key
    path.unlink()
    path.write_bytes(b"this is not audio at all" * 100)
    page.goto("/info?name=broken.aiff")
    status_line = page.locator("#player-status")
    expect(status_line).to_be_visible()
    expect(status_line).to_contain_text("cannot be played in the browser")
    expect(status_line).to_contain_text("could not be decoded")
    expect(status_line.get_by_role("link", name="Download it")).to_have_attribute(
        "href", "/download?name=broken.aiff")
    shot(page, "info-cannot-play")


def record_key(server, name: str) -> str:
    """The storage key of `name`, from its .meta sidecar (the tests' view
    behind the API; the server never says it)."""
    import json

    for meta in (server.data_dir / "audio").glob("*.meta"):
        if json.loads(meta.read_text())["name"] == name:
            return meta.name.removesuffix(".meta")
    raise AssertionError(f"no .meta names {name!r}")


def test_speed_is_chosen_and_kept(page, server):
    assert server.put("speed.flac", music("FLAC"))[0] == 201
    page.goto("/info?name=speed.flac")
    wait_until(page, f"document.getElementById('audio').readyState >= {HAVE_METADATA}")
    page.get_by_label("Speed").select_option("1.5")
    assert audio_property(page, "playbackRate") == 1.5
    page.reload()
    wait_until(page, f"document.getElementById('audio').readyState >= {HAVE_METADATA}")
    expect(page.get_by_label("Speed")).to_have_value("1.5")
    assert audio_property(page, "playbackRate") == 1.5
    page.get_by_label("Speed").select_option("0.5")
    assert audio_property(page, "playbackRate") == 0.5
    page.get_by_label("Speed").select_option("1")


def test_a_long_file_resumes_where_it_was_left(page, server):
    # Eleven minutes of a quiet FLAC at 8 kHz: small, and played as it is.
    assert server.put("book.flac", music("FLAC", samplerate=8000, seconds=660))[0] == 201
    assert server.put("short.flac", music("FLAC", samplerate=8000, seconds=20))[0] == 201
    page.goto("/info?name=book.flac")
    wait_until(page, f"document.getElementById('audio').readyState >= {HAVE_METADATA}")
    expect(page.locator("#resume-status")).to_be_hidden()
    expect(page.get_by_role("button", name="Start over")).to_be_hidden()
    waveform = page.locator("#waveform")
    waveform.press("Home")
    for _ in range(6):
        waveform.press("PageUp")  # 30 s each
    wait_until(page, "Math.abs(document.getElementById('audio').currentTime - 180) < 0.5")
    page.reload()
    wait_until(page, "Math.abs(document.getElementById('audio').currentTime - 180) < 0.5")
    expect(page.locator("#resume-status")).to_have_text("Resumed at 3:00, where you stopped.")
    shot(page, "info-resumed")
    page.get_by_role("button", name="Start over").click()
    wait_until(page, "document.getElementById('audio').currentTime < 0.5")
    page.reload()
    wait_until(page, f"document.getElementById('audio').readyState >= {HAVE_METADATA}")
    assert audio_property(page, "currentTime") == 0
    # A short file never resumes.
    page.goto("/info?name=short.flac")
    wait_until(page, f"document.getElementById('audio').readyState >= {HAVE_METADATA}")
    page.locator("#waveform").press("ArrowRight")
    page.locator("#waveform").press("ArrowRight")
    wait_until(page, "document.getElementById('audio').currentTime > 9")
    page.reload()
    wait_until(page, f"document.getElementById('audio').readyState >= {HAVE_METADATA}")
    assert audio_property(page, "currentTime") == 0


def test_tags_the_cover_and_the_edit_form(page, server):
    from test_tags import TAGS, tagged_mp3

    status, _ = server.put("whale.mp3", tagged_mp3(cover=audiofiles.png(64, 64), **TAGS))
    assert status == 201
    # Files uploaded with the admin's token are the admin's: alice's own is edited.
    upload_as_alice(page, "mine.mp3", tagged_mp3(cover=audiofiles.png(64, 64), **TAGS))
    page.goto("/info?name=mine.mp3")
    expect(page.locator("#cover")).to_be_visible()
    expect(page.get_by_role("button", name="Start over")).to_be_hidden()
    assert page.locator("#cover").evaluate("image => image.naturalWidth") == 64
    expect(page.locator("#tags")).to_contain_text("hydrophone at dawn")
    page.get_by_text("Edit the name and tags").click()
    page.get_by_label("Title").fill("Humpback")
    page.get_by_label("Description").fill("Heard from the boat")
    page.get_by_label("Name", exact=True).fill("humpback.mp3")
    shot(page, "info-edit-form")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"http://127.0.0.1:{server.port}/info?name=humpback.mp3")
    expect(page.locator('#tags [data-field="title"]')).to_have_text("Humpback")
    expect(page.locator('#tags [data-field="description"]')).to_have_text("Heard from the boat")
    shot(page, "info-cover")
    # Someone else's file has no form.
    page.goto("/info?name=whale.mp3")
    expect(page.locator("#edit")).to_have_count(0)


def upload_as_alice(page, name: str, data: bytes) -> None:
    """PUT from the signed-in page itself, with its session and CSRF token."""
    status = page.evaluate("""async ([name, bytes]) => {
        const token = document.querySelector('meta[name="csrf-token"]').content;
        const response = await fetch('/upload?name=' + encodeURIComponent(name), {
            method: 'PUT', body: new Uint8Array(bytes),
            headers: {'X-CSRF-Token': token, 'Accept': 'application/json'}});
        return response.status;
    }""", [name, list(data)])
    assert status == 201
