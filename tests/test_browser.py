"""The pages in a real browser: Debian's Chromium driven by Playwright.

The server is the real one, `python -m audioserver` on a free port; the
tests are plain functions (Playwright's sync API must not run inside the
event loop pytest-aiohttp gives async tests). Screenshots of every page land
in the test's temporary directory, with a copy in SCREENS to look at.
"""

import base64
import io
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from playwright.sync_api import expect, sync_playwright

import audiofiles
from serverprocess import ServerProcess, account

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps reaching for Google's hosts,
# which this closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENS = Path("/tmp/audioserver-screens")
WIDE = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}
MARKUP_NAME = "<img src=x onerror=alert(1)>.wav"
PASSWORD = "correct horse battery"


def shaped(seconds: float, format: str = "WAV", channels: int = 1) -> bytes:
    """Notes that swell and fade, so a drawn waveform shows its shape."""
    rate = 22050
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.abs(np.sin(np.pi * t / 1.5)) * (0.3 + 0.6 * (t / seconds))
    wave = envelope * np.sin(2 * np.pi * (220 + 110 * np.floor(t / 1.5) % 440) * t)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.repeat(wave[:, None], channels, axis=1), rate, format=format)
    return buffer.getvalue()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token.strip()}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with accounts, as on a network: alice signs in with the
    browser; the tests' own requests use an admin's API token."""
    tmp = tmp_path_factory.mktemp("browser")
    server = ServerProcess(tmp / "data", tmp, workers=1)
    server.headers = account(server.data_dir, "root", PASSWORD, "--admin")
    server.alice = account(server.data_dir, "alice", PASSWORD)
    account(server.data_dir, "bob", PASSWORD)
    server.start(server.command("--auth", "users"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def browser():
    # CI installs it (.ci/run); a missing browser is a failure, never a skip.
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: .ci/run installs it with apt-get"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, server, tmp_path, user: str | None = "alice", **options):
    """A page in a browser of its own, signed in as `user` through /login."""
    context = browser.new_context(base_url=f"http://127.0.0.1:{server.port}",
                                  viewport=options.pop("viewport", WIDE),
                                  accept_downloads=True, **options)
    page = context.new_page()
    page.errors = []
    page.dialogs = []
    page.on("pageerror", lambda error: page.errors.append(error))
    # Whatever the Content-Security-Policy blocks is a page that does not work.
    page.on("console", lambda message: "Content Security Policy" in message.text
            and page.errors.append(message.text))
    page.screens = tmp_path
    if user is not None:
        sign_in(page, user)
    return page


def sign_in(page, user: str) -> None:
    page.goto("/login")
    page.get_by_label("Account name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name=user)).to_be_visible()


@pytest.fixture
def page(browser, server, tmp_path):
    page = open_page(browser, server, tmp_path)
    yield page
    page.context.close()
    assert page.errors == []


def shot(page, name: str) -> None:
    """A screenshot in the test's directory, and a copy where people look."""
    path = page.screens / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    SCREENS.mkdir(exist_ok=True)
    shutil.copy(path, SCREENS / path.name)


def audio_property(page, name: str):
    return page.evaluate(f"document.getElementById('audio').{name}")


def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll `expression` in the page until it is true. Playwright's own
    wait_for_function evaluates a string, which our CSP (rightly) forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout:g} s: {expression}"
        page.wait_for_timeout(50)


def wait_for_time(page, seconds: float) -> None:
    wait_until(page, 
        f"Math.abs(document.getElementById('audio').currentTime - {seconds}) < 0.1")


def throttle_uploads(page, bytes_per_second: int) -> None:
    """Slow the browser's uploads down, so progress can be seen between 0 and 100%."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": bytes_per_second})


def record_upload_statuses(page) -> None:
    """Keep every text the upload rows show, in window.statuses, by row."""
    page.evaluate("""() => {
        window.statuses = [];
        new MutationObserver(() => document.querySelectorAll("#uploads .status").forEach(
            (status, row) => window.statuses.push([row, status.textContent])))
          .observe(document.getElementById("uploads"),
                   { subtree: true, childList: true, characterData: true });
    }""")


def rows(page):
    return page.locator("table.library tbody tr")


def test_the_whole_journey(page, server, tmp_path):
    short = tmp_path / "short tone.wav"
    short.write_bytes(shaped(8.0, channels=2))
    long = tmp_path / "long tone.flac"
    long.write_bytes(shaped(30.0, "FLAC"))

    page.goto("/")
    expect(page.get_by_role("heading", name="Your audio library")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    shot(page, "home")

    page.get_by_role("link", name="Upload").first.click()
    throttle_uploads(page, 600_000)
    record_upload_statuses(page)
    page.get_by_label("Choose audio files").set_input_files([short, long])
    # What is about to be sent, before it is: each name and its size.
    chosen = page.locator("#chosen-files li")
    expect(chosen).to_have_count(2)
    expect(chosen.nth(0)).to_have_text(f"short tone.wav {short.stat().st_size / 1024:.1f} KiB")
    expect(chosen.nth(1)).to_contain_text("long tone.flac")
    expect(page.locator("#chosen-summary")).to_contain_text("2 files chosen")
    shot(page, "upload-chosen")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#chosen")).to_be_hidden()
    bars = page.locator("#uploads progress")
    expect(bars).to_have_count(2)
    expect(page.locator("#uploads .status").first).to_contain_text(re.compile(r"of .* \(\d+%\)"))
    shot(page, "upload-progress")
    for index, file in enumerate([short, long]):
        item = page.locator("#uploads li").nth(index)
        expect(item).to_have_class(re.compile("done"))
        expect(item.locator(".status")).to_contain_text("(100%)")
        value, maximum = bars.nth(index).evaluate("bar => [bar.value, bar.max]")
        assert value == maximum == file.stat().st_size
        expect(item.get_by_role("link", name=file.name)).to_have_attribute(
            "href", re.compile(r"^/info\?name="))
    expect(page.locator("#uploads-summary")).to_contain_text("2 stored")
    shot(page, "upload")
    # Each bar was seen on its way: bytes and a percent strictly between 0 and 100.
    for index in range(2):
        shown = [text for row, text in page.evaluate("window.statuses") if row == index]
        percents = [int(p) for p in re.findall(r"of [^(]+\((\d+)%\)", " ".join(shown))]
        assert any(0 < p < 100 for p in percents), shown
        assert percents == sorted(percents) and percents[-1] == 100, shown

    page.locator("#uploads-summary").get_by_role("link", name="Open the library").click()
    expect(rows(page)).to_have_count(2)
    expect(rows(page).first).to_contain_text("0:30")
    shot(page, "library")
    page.get_by_label("Max seconds").fill("10")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"maxduration=10"))
    expect(rows(page)).to_have_count(1)
    expect(page.get_by_label("Max seconds")).to_have_value("10")
    shot(page, "library-filtered")

    # Any cell of the row opens the file: the name's link covers the row
    # (force: Playwright sees that cover and would refuse to click the cell).
    rows(page).first.locator("td.number").first.click(force=True)
    expect(page.get_by_role("heading", name="short tone.wav")).to_be_visible()
    wait_until(page, "document.getElementById('audio').readyState >= 1")
    assert audio_property(page, "duration") == pytest.approx(8.0, abs=0.01)
    expect(page.locator("#waveform")).to_have_attribute("data-state", "ready")
    shot(page, "info")

    waveform = page.locator("#waveform")
    box = waveform.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    wait_for_time(page, 4.0)
    expect(waveform).to_have_attribute("aria-valuetext", "0:04 of 0:08")
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    wait_for_time(page, 6.0)
    waveform.press("ArrowLeft")
    wait_for_time(page, 1.0)
    waveform.press("End")
    wait_for_time(page, 8.0)
    waveform.press("Home")
    wait_for_time(page, 0.0)
    # Space plays, and the playhead moves on its own.
    waveform.press(" ")
    wait_until(page, "Number(document.getElementById('waveform')"
                           ".getAttribute('aria-valuenow')) >= 0.3")
    waveform.press(" ")
    assert audio_property(page, "paused")
    shot(page, "info-played")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download").last.click()
    assert download.value.suggested_filename == "short tone.wav"
    assert download.value.path().stat().st_size == short.stat().st_size
    assert download.value.path().read_bytes() == short.read_bytes()

    page.once("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/list\?deleted=short\+tone\.wav$"))
    expect(page.locator(".notice[role=status]")).to_have_text("Deleted “short tone.wav”.")
    assert "short tone.wav" in page.dialogs[0]
    expect(rows(page)).to_have_count(1)
    expect(page.get_by_role("link", name="short tone.wav")).to_have_count(0)
    shot(page, "library-after-delete")


def test_files_dropped_on_the_page_are_uploaded(page, server):
    page.goto("/upload")
    data = base64.b64encode(audiofiles.wav(0.5)).decode()
    transfer = page.evaluate_handle("""data => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.wav", { type: "audio/wav" }));
        return transfer;
    }""", data)
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    expect(page.locator("#uploads li.done")).to_contain_text("dropped.wav")
    assert server.info("dropped.wav")[0] == 200


def test_refusals_show_next_to_each_file(page, server, tmp_path):
    server.put("taken.wav", audiofiles.wav())
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    taken = tmp_path / "taken.wav"
    taken.write_bytes(audiofiles.wav())
    fine = tmp_path / "fine.wav"
    fine.write_bytes(audiofiles.wav())
    page.goto("/upload")
    page.get_by_label("Choose audio files").set_input_files([text, taken, fine])
    page.get_by_role("button", name="Upload").click()
    items = page.locator("#uploads li")
    expect(items.nth(0)).to_have_class(re.compile("failed"))
    expect(items.nth(0)).to_contain_text("not audio this server can read")
    expect(items.nth(1)).to_have_class(re.compile("failed"))
    expect(items.nth(1)).to_contain_text("'taken.wav' is taken")
    expect(items.nth(2)).to_have_class(re.compile("done"))
    expect(page.locator("#uploads-summary")).to_contain_text("1 stored, 2 refused")
    shot(page, "upload-errors")


def test_uploading_without_javascript(browser, server, tmp_path):
    page = open_page(browser, server, tmp_path, java_script_enabled=False)
    try:
        file = tmp_path / "plain form.wav"
        file.write_bytes(audiofiles.wav())
        page.goto("/upload")
        page.get_by_label("Choose audio files").set_input_files([file])
        page.get_by_role("button", name="Upload").click()
        expect(page).to_have_url(re.compile(r"/info\?name=plain\+form\.wav$"))
        expect(page.get_by_role("heading", name="plain form.wav")).to_be_visible()
    finally:
        page.context.close()


def test_cancelling_the_delete_keeps_the_file(page, server):
    server.request("PUT", "/upload?name=keep.wav", audiofiles.wav(), server.alice)
    page.goto("/info?name=keep.wav")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/info\?name=keep.wav"))
    assert server.info("keep.wav")[0] == 200


def test_names_with_markup_are_text(page, server, tmp_path):
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    file = tmp_path / MARKUP_NAME
    file.write_bytes(shaped(3.0))
    page.goto("/upload")
    page.get_by_label("Choose audio files").set_input_files([file])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#uploads li.done")).to_contain_text(MARKUP_NAME)
    assert page.locator("img").count() == 0
    page.goto("/list?q=onerror")
    expect(page.get_by_role("link", name=MARKUP_NAME)).to_be_visible()
    assert page.locator("img").count() == 0
    shot(page, "markup-name-library")
    page.get_by_role("link", name=MARKUP_NAME).click()
    expect(page.get_by_role("heading", name=MARKUP_NAME)).to_be_visible()
    expect(page.locator("#waveform")).to_have_attribute("data-state", "ready")
    assert page.locator("img").count() == 0
    assert page.dialogs == []
    shot(page, "markup-name-info")


def test_pages_without_a_name_ask_for_one(page, server):
    server.put("asked.wav", audiofiles.wav())
    page.goto("/")
    page.get_by_role("link", name="Info").first.click()
    page.get_by_label("Name of the file").fill("asked.wav")
    shot(page, "ask-name")
    page.get_by_label("Name of the file").press("Enter")
    expect(page.get_by_role("heading", name="asked.wav")).to_be_visible()
    page.goto("/info?name=missing.wav")
    expect(page.get_by_role("heading", name="404 Not Found")).to_be_visible()
    expect(page.locator(".problem")).to_contain_text("missing.wav")
    shot(page, "error")


def test_pages_fit_a_phone(browser, server, tmp_path):
    server.put("a rather long name for a phone screen, to see it wrap.wav", shaped(5.0))
    page = open_page(browser, server, tmp_path, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        for path, name in [("/", "phone-home"), ("/upload", "phone-upload"),
                           ("/list", "phone-library"),
                           ("/info?name=a+rather+long+name+for+a+phone+screen%2C+to+see+it+wrap.wav",
                            "phone-info")]:
            page.goto(path)
            if name == "phone-info":
                expect(page.locator("#waveform")).to_have_attribute("data-state", "ready")
            # The page itself never scrolls sideways; only the table may, inside its box.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
            shot(page, name)
    finally:
        page.context.close()
    assert page.errors == []


def test_a_fresh_server_is_set_up_in_the_browser(browser, tmp_path):
    """The first visitor with the setup code makes the admin; an empty library
    says how to upload; a file over the limit is refused before it is sent,
    in the same words as the server's."""
    server = ServerProcess(tmp_path / "fresh", tmp_path, workers=1)
    server.start(server.command("--max-upload-size", "100K", "--auth", "users"))
    try:
        code = re.search(r"setup code (\w+)", server.stdout).group(1)
        page = open_page(browser, server, tmp_path, user=None)
        page.goto("/")
        page.get_by_role("link", name="Create the first admin").click()
        page.get_by_label("Setup code").fill(code)
        page.get_by_label("Admin account name").fill("root")
        page.get_by_label("Password").fill(PASSWORD)
        shot(page, "setup")
        page.get_by_role("button", name="Create the admin and sign in").click()
        expect(page.get_by_role("link", name="root")).to_be_visible()
        page.goto("/list")
        expect(page.get_by_text("The library is empty")).to_be_visible()
        expect(page.get_by_role("link", name="Upload audio files")).to_be_visible()
        shot(page, "library-empty")
        page.get_by_role("link", name="Upload audio files").click()
        expect(page.get_by_text("up to 100.0 KiB each")).to_be_visible()
        big = tmp_path / "big.wav"
        big.write_bytes(audiofiles.wav(2.0))
        page.get_by_label("Choose audio files").set_input_files([big])
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#uploads li.failed")).to_contain_text(
            "'big.wav' is larger than this server accepts (100.0 KiB); nothing was sent")
        assert server.names() == []
        page.context.close()
        assert page.errors == []
    finally:
        server.kill()


def test_private_files_stay_private(browser, server, tmp_path):
    alice = open_page(browser, server, tmp_path)
    bob = open_page(browser, server, tmp_path, user="bob")
    try:
        file = tmp_path / "diary.wav"
        file.write_bytes(shaped(2.0))
        alice.goto("/upload")
        alice.get_by_label("Who may see the files").select_option("private")
        alice.get_by_label("Choose audio files").set_input_files([file])
        alice.get_by_role("button", name="Upload").click()
        expect(alice.locator("#uploads li.done")).to_contain_text("diary.wav")
        alice.goto("/list?q=diary")
        row = rows(alice).filter(has_text="diary.wav")
        expect(row.locator(".badge")).to_have_text("private")
        expect(row.locator("td.owner")).to_have_text("alice")
        shot(alice, "library-private")
        alice.goto("/info?name=diary.wav")
        expect(alice.get_by_text("private: only its owner and admins see it")).to_be_visible()
        shot(alice, "info-private")

        bob.goto("/list?q=diary")
        expect(bob.get_by_text("No file matches")).to_be_visible()
        bob.goto("/info?name=diary.wav")
        expect(bob.get_by_role("heading", name="404 Not Found")).to_be_visible()

        alice.get_by_role("button", name="Make public").click()
        expect(alice.get_by_text("public: anyone may see")).to_be_visible()
        bob.goto("/info?name=diary.wav")
        expect(bob.get_by_role("heading", name="diary.wav")).to_be_visible()
        # Not bob's: he may play it, not delete it or hide it.
        expect(bob.get_by_role("button", name="Delete")).to_have_count(0)
        expect(bob.get_by_role("button", name="Make private")).to_have_count(0)
        shot(bob, "info-someone-elses")
    finally:
        alice.context.close()
        bob.context.close()
    assert alice.errors == [] and bob.errors == []


def test_tokens_on_the_account_page_and_signing_out(page, server):
    page.get_by_role("link", name="alice").click()
    expect(page.get_by_role("heading", name="alice")).to_be_visible()
    page.get_by_label("New token's label").fill("backup script")
    page.get_by_label("Expires").select_option("30d")
    # The password is asked again, and a wrong one makes no token.
    page.get_by_label("Your password").fill("not the password")
    page.get_by_role("button", name="Create a token").click()
    expect(page.get_by_role("alert")).to_contain_text("not your current password")
    expect(page.locator("#new-token")).to_have_count(0)
    expect(page.get_by_label("New token's label")).to_have_value("backup script")
    expect(page.get_by_label("Expires")).to_have_value("30d")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Create a token").click()
    token = page.locator("#new-token").text_content()
    # Created, never used yet, expires.
    expect(page.get_by_role("row", name=re.compile("backup script"))).to_contain_text(
        re.compile(r"UTC.*never.*UTC", re.S))
    assert token.startswith("as_")
    shot(page, "account-new-token")
    status, _, body = server.request("GET", "/account", headers={
        **bearer(token), "Accept": "application/json"})
    assert status == 200 and b'"alice"' in body
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("row", name=re.compile("backup script")).get_by_role(
        "button", name="Revoke").click()
    expect(page.get_by_role("row", name=re.compile("backup script"))).to_have_count(0)
    assert server.request("GET", "/account", headers=bearer(token))[0] == 401
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    page.goto("/upload")
    expect(page).to_have_url(re.compile(r"/login\?next=/upload$"))
    shot(page, "login")


def test_the_upload_page_waits_when_the_server_says_so(browser, tmp_path):
    """Over the upload rate, the page waits for Retry-After and sends again."""
    server = ServerProcess(tmp_path / "slow", tmp_path, workers=1)
    server.start(server.command("--upload-rate", "2/s"))
    try:
        page = open_page(browser, server, tmp_path, user=None)
        files = []
        for index in range(5):
            files.append(tmp_path / f"take {index}.wav")
            files[-1].write_bytes(audiofiles.wav(0.2))
        page.goto("/upload")
        record_upload_statuses(page)
        page.get_by_label("Choose audio files").set_input_files(files)
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#uploads-summary")).to_contain_text("5 stored", timeout=20_000)
        statuses = [text for _, text in page.evaluate("window.statuses")]
        assert any("the server asks to slow down" in text for text in statuses)
        assert sorted(server.names()) == [file.name for file in files]
        page.context.close()
        assert page.errors == []
    finally:
        server.kill()


def test_an_admin_manages_accounts_in_the_browser(browser, server, tmp_path):
    root = open_page(browser, server, tmp_path, user="root")
    try:
        root.get_by_role("link", name="Accounts").click()
        expect(root.get_by_role("heading", name="Accounts")).to_be_visible()
        root.get_by_label("Account name").fill("carol")
        root.get_by_label("Password", exact=True).fill(PASSWORD)
        root.get_by_label("Role").select_option("admin")
        root.get_by_role("button", name="Create the account").click()
        carol = root.get_by_role("row", name=re.compile(r"^carol\b"))
        expect(carol).to_contain_text("admin")
        shot(root, "accounts")

        # A new password for carol signs her out; the old one stops working.
        other = open_page(browser, server, tmp_path, user="carol")
        root.once("dialog", lambda dialog: dialog.accept())
        carol.get_by_label("New password for carol").fill("carol's new password")
        carol.get_by_role("button", name="Set").click()
        expect(root.get_by_role("status")).to_contain_text("New password for carol")
        other.reload()
        expect(other.get_by_role("link", name="Sign in")).to_be_visible()
        other.context.close()
        assert server.request("POST", "/login", b"name=carol&password=correct+horse+battery",
                              {"Content-Type": "application/x-www-form-urlencoded"})[0] == 401

        root.once("dialog", lambda dialog: dialog.accept())
        root.get_by_role("button", name="Remove carol").click()
        expect(root.get_by_role("row", name=re.compile(r"^carol\b"))).to_have_count(0)
        expect(root.get_by_role("button", name="Remove root")).to_have_count(0)
    finally:
        root.context.close()
    assert root.errors == []


def test_someone_not_an_admin_gets_a_403_page_for_accounts(page):
    expect(page.get_by_role("link", name="Accounts")).to_have_count(0)
    page.goto("/users")
    expect(page.get_by_role("heading", name="403 Forbidden")).to_be_visible()
    expect(page.locator(".problem")).to_contain_text("only admins manage accounts")


def test_changing_the_password_signs_out_the_other_browser(browser, server, tmp_path):
    account(server.data_dir, "dora", PASSWORD)
    here = open_page(browser, server, tmp_path, user="dora")
    there = open_page(browser, server, tmp_path, user="dora")
    try:
        here.get_by_role("link", name="dora").click()
        shot(here, "account")
        here.get_by_label("Current password").fill(PASSWORD)
        here.get_by_label("New password", exact=True).fill("dora's new password")
        here.get_by_label("New password again").fill("dora's new password")
        here.get_by_label("Also revoke every API token").check()
        here.get_by_role("button", name="Change the password").click()
        expect(here.get_by_role("status")).to_contain_text("Your password is changed")
        shot(here, "account-password-changed")
        # This browser stays signed in; the other one is signed out.
        here.goto("/account")
        expect(here.get_by_role("heading", name="dora")).to_be_visible()
        there.goto("/account")
        expect(there).to_have_url(re.compile(r"/login\?next=/account$"))
        expect(there.get_by_role("link", name="Sign in")).to_be_visible()
    finally:
        here.context.close()
        there.context.close()
    assert here.errors == [] and there.errors == []


def test_signed_out_nobody_is_offered_upload_or_delete(browser, server, tmp_path):
    page = open_page(browser, server, tmp_path, user=None)
    try:
        page.goto("/")
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Library")).to_be_visible()
        expect(nav.get_by_role("link", name="Upload")).to_have_count(0)
        expect(nav.get_by_role("link", name="Delete")).to_have_count(0)
    finally:
        page.context.close()


def player_property(page, name: str):
    return page.evaluate(f"document.getElementById('row-player').{name}")


def test_library_rows_play_in_place_one_at_a_time(page, server):
    server.put("row one.wav", shaped(6.0))
    server.put("row two.wav", shaped(6.0, channels=2))
    page.goto("/list?q=row+")
    one, two = rows(page).nth(0), rows(page).nth(1)
    expect(one).to_contain_text("row one.wav")
    one.get_by_role("button", name="Play row one.wav").click()
    wait_until(page, "document.getElementById('row-player').currentTime > 0.5")
    assert "name=row+one.wav" in player_property(page, "src")
    expect(one).to_have_class(re.compile(r"\bplaying\b"))
    expect(one.get_by_role("button", name="Pause row one.wav")).to_have_attribute(
        "aria-pressed", "true")
    # The row shows how far it has got.
    played = one.get_by_role("progressbar", name="Played of row one.wav")
    expect(played).to_be_visible()
    wait_until(page, "document.querySelector('tr.playing progress').value > 0.05")
    shot(page, "library-playing")

    # Another row, from the keyboard: the first one stops, the second plays.
    two.get_by_role("button", name="Play row two.wav").focus()
    page.keyboard.press("Enter")
    wait_until(page, "document.getElementById('row-player').src.includes('row+two.wav')"
                     " && document.getElementById('row-player').currentTime > 0.5")
    expect(one).not_to_have_class(re.compile(r"\bplaying\b"))
    expect(one.get_by_role("button", name="Play row one.wav")).to_have_attribute(
        "aria-pressed", "false")
    expect(two).to_have_class(re.compile(r"\bplaying\b"))
    assert page.locator("tr.playing").count() == 1

    # Pressed again (Space, still focused), it pauses where it was.
    page.keyboard.press(" ")
    wait_until(page, "document.getElementById('row-player').paused")
    expect(two.get_by_role("button", name="Play row two.wav")).to_have_attribute(
        "aria-pressed", "false")
    stopped_at = player_property(page, "currentTime")
    assert stopped_at > 0.5
    page.keyboard.press(" ")
    wait_until(page, f"document.getElementById('row-player').currentTime > {stopped_at + 0.3}")
    assert "row+two.wav" in player_property(page, "src")


def test_library_pages_sort_and_page_in_the_browser(page, server):
    for index in range(5):
        server.put(f"pager {index}.wav", shaped(1.0 + index))
    page.goto("/list?q=pager&limit=2")
    expect(page.get_by_text("1-2 of 5 files")).to_be_visible()
    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_text("3-4 of 5 files")).to_be_visible()
    expect(rows(page).nth(0)).to_contain_text("pager 2.wav")
    page.get_by_role("link", name="Previous page").click()
    expect(page.get_by_text("1-2 of 5 files")).to_be_visible()
    expect(rows(page).nth(0)).to_contain_text("pager 0.wav")
    expect(page.get_by_role("link", name="Previous page")).to_have_count(0)
    # Sorting by channels, then the page size changes at once.
    page.get_by_role("link", name="Channels").click()
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Channels")
    page.get_by_label("Per page").select_option("10")
    expect(page).to_have_url(re.compile(r"limit=10"))
    expect(page.get_by_text("5 files")).to_be_visible()
    expect(rows(page)).to_have_count(5)
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Channels")
