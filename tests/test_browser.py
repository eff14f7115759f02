"""The pages in a real browser: Debian's Chromium driven by Playwright.

Screenshots of every page land in the test's temporary directory.
"""

import re
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

import audiofiles
from serverprocess import ServerProcess

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps reaching for Google's hosts,
# which this closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    server = ServerProcess(tmp / "data", tmp)
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def browser():
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: .ci/run installs it with apt-get"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server, tmp_path):
    context = browser.new_context(base_url=f"http://127.0.0.1:{server.port}",
                                  viewport={"width": 1100, "height": 800},
                                  accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.screens = tmp_path
    yield page
    context.close()
    assert errors == []


def shot(page, name: str) -> None:
    page.screenshot(path=page.screens / f"{name}.png", full_page=True)


def test_the_whole_journey(page, server, tmp_path):
    short = tmp_path / "short tone.wav"
    short.write_bytes(audiofiles.wav(4.0, channels=2))
    long = tmp_path / "long tone.flac"
    long.write_bytes(audiofiles.encode(30.0, "FLAC"))

    page.goto("/")
    expect(page.get_by_role("heading", name="Your audio library")).to_be_visible()
    shot(page, "home")

    page.get_by_role("link", name="Upload").first.click()
    page.locator("#file").set_input_files([short, long])
    page.get_by_role("button", name="Upload").click()
    bars = page.locator("#uploads progress")
    expect(bars).to_have_count(2)
    for index in range(2):
        expect(page.locator("#uploads li").nth(index)).to_have_class(re.compile("done"))
        value, maximum = bars.nth(index).evaluate("bar => [bar.value, bar.max]")
        assert value == maximum
    expect(page.locator("#uploads .status").first).to_contain_text("100%")
    shot(page, "upload")

    page.get_by_role("link", name="Library").click()
    expect(page.locator("table.library tbody tr")).to_have_count(2)
    shot(page, "library")
    page.get_by_label("Max seconds").fill("10")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"maxduration=10"))
    expect(page.locator("table.library tbody tr")).to_have_count(1)
    shot(page, "library-filtered")

    page.get_by_role("link", name="short tone.wav").click()
    expect(page.get_by_role("heading", name="short tone.wav")).to_be_visible()
    page.wait_for_function("document.getElementById('audio').readyState >= 1")
    assert page.evaluate("document.getElementById('audio').duration") == pytest.approx(4.0, abs=0.01)
    page.wait_for_function("document.getElementById('waveform').getAttribute('aria-valuetext')")
    shot(page, "info")

    box = page.locator("#waveform").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.wait_for_function("Math.abs(document.getElementById('audio').currentTime - 2.0) < 0.1")
    page.locator("#waveform").press("ArrowRight")
    page.wait_for_function("Math.abs(document.getElementById('audio').currentTime - 4.0) < 0.1")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download").last.click()
    assert download.value.suggested_filename == "short tone.wav"
    assert download.value.path().read_bytes() == short.read_bytes()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/list$"))
    expect(page.locator("table.library tbody tr")).to_have_count(1)
    expect(page.get_by_role("link", name="short tone.wav")).to_have_count(0)
    shot(page, "library-after-delete")


def test_errors_show_next_to_the_file(page, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    page.goto("/upload")
    page.locator("#file").set_input_files([text])
    page.get_by_role("button", name="Upload").click()
    failed = page.locator("#uploads li.failed")
    expect(failed).to_contain_text("not audio this server can read")
    shot(page, "upload-error")


def test_cancelling_the_delete_keeps_the_file(page, server):
    server.put("keep.wav", audiofiles.wav())
    page.goto("/info?name=keep.wav")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/info\?name=keep.wav"))
    assert server.info("keep.wav")[0] == 200


def test_names_with_markup_are_text(page, server):
    name = "<img src=x onerror=alert(1)>.wav"
    server.put(name, audiofiles.wav())
    page.on("dialog", lambda dialog: pytest.fail("a script ran from a name"))
    page.goto("/list")
    expect(page.get_by_role("link", name=name)).to_be_visible()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    assert page.locator("img").count() == 0
    shot(page, "markup-name")


def test_pages_without_a_name_ask_for_one(page, server):
    server.put("asked.wav", audiofiles.wav())
    page.goto("/info")
    page.get_by_label("Name of the file").fill("asked.wav")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="asked.wav")).to_be_visible()
    page.goto("/info?name=missing.wav")
    expect(page.get_by_role("heading", name="404 Not Found")).to_be_visible()
    shot(page, "error")


def test_an_empty_library_says_how_to_upload(browser, tmp_path):
    server = ServerProcess(tmp_path / "empty", tmp_path)
    server.start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.port}/list")
        expect(page.get_by_text("The library is empty")).to_be_visible()
        page.close()
    finally:
        server.kill()
