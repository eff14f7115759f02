"""The access log: a line per request, in the log's own format, written in
batches off the request path, and none lost when the server stops."""

import re
import time

import pytest

from serverprocess import ServerProcess

LINE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO aiohttp\.access: 127\.0\.0\.1 '
                  r'"GET /info\?name=(\w+)\.wav" 404 \d+ [\d.]+ ms$', re.MULTILINE)


@pytest.fixture(params=[1, 2], ids=["one process", "two workers"])
def server(tmp_path, request):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=request.param).start()
    yield server
    server.kill()


def logged(server) -> list[str]:
    return LINE.findall(server.stderr)


def test_each_request_is_logged_soon(server):
    for index in range(3):
        assert server.request("GET", f"/info?name=soon{index}.wav")[0] == 404
    deadline = time.monotonic() + 10
    while len(logged(server)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(logged(server)) == ["soon0", "soon1", "soon2"]


def test_no_line_is_lost_when_the_server_stops(server):
    for index in range(300):  # more than one write's worth, and a rest
        assert server.request("GET", f"/info?name=stop{index}.wav")[0] == 404
    assert server.stop() == 0
    assert sorted(logged(server)) == sorted(f"stop{index}" for index in range(300))
