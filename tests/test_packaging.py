"""A regular install: the wheel, in a fresh venv, run from another directory.

An editable install finds everything in the checkout; a wheel has only what
the build put in it. So this builds the wheel, installs it in a new virtual
environment (its dependencies from pip's usual index and cache), starts
`python -m audioserver` from a directory that holds no source, and asks for
pages, an error page and a static file.
"""

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from serverprocess import ServerProcess

PROJECT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT = 600
NOT_SOURCE = (".git", ".venv", "build", "data", "*.egg-info", "__pycache__", ".pytest_cache")


def run(*command, cwd=None) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                          text=True, timeout=INSTALL_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # setuptools builds in the source tree: a copy keeps the checkout clean.
    source = tmp_path_factory.mktemp("source") / "audioserver"
    shutil.copytree(PROJECT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, source)
    (built,) = out.glob("audioserver-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The python of a fresh venv that has the wheel and its dependencies."""
    where = tmp_path_factory.mktemp("venv")
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", wheel)
    return python


def test_the_wheel_carries_templates_and_static_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    for template in (PROJECT / "templates").glob("*.html"):
        assert f"audioserver/templates/{template.name}" in names
    for static in (PROJECT / "audioserver" / "web" / "static").iterdir():
        assert f"audioserver/web/static/{static.name}" in names


def test_an_installed_wheel_serves_pages_from_anywhere(installed, tmp_path, browser_headers):
    assert not package_file(installed, tmp_path).is_relative_to(PROJECT)
    assert_serves_pages(installed, tmp_path, browser_headers)


def test_an_editable_install_serves_pages_from_anywhere(tmp_path, browser_headers):
    # The venv running these tests: .ci/run installs it with `pip install -e`.
    assert package_file(sys.executable, tmp_path).is_relative_to(PROJECT)
    assert_serves_pages(sys.executable, tmp_path, browser_headers)


def package_file(python, tmp_path) -> Path:
    """Which audioserver `python` imports outside the checkout."""
    return Path(run(python, "-c", "import audioserver; print(audioserver.__file__)",
                    cwd=tmp_path).strip())


def assert_serves_pages(python, tmp_path, browser_headers) -> None:
    """`python -m audioserver`, started in a directory that holds no source,
    renders pages and error pages and serves static files."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server = ServerProcess(elsewhere / "data", tmp_path, workers=1, cwd=elsewhere)
    try:
        server.start([str(python), *server.command()[1:]])
        for path in ("/", "/list", "/upload"):
            status, headers, body = server.request("GET", path, headers=browser_headers)
            assert (status, headers["Content-Type"].split(";")[0]) == (200, "text/html"), path
            assert b"</html>" in body
        status, headers, body = server.request("GET", "/info?name=nothing.wav",
                                               headers=browser_headers)
        assert (status, headers["Content-Type"].split(";")[0]) == (404, "text/html")
        assert b"nothing.wav" in body and b"</html>" in body
        for static in (PROJECT / "audioserver" / "web" / "static").iterdir():
            status, _, body = server.request("GET", "/static/" + static.name)
            assert (status, body) == (200, static.read_bytes())
    finally:
        server.kill()
