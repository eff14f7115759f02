import pytest

PROBLEM_KEYS = {"type", "title", "status", "detail"}


async def problem(response, status: int) -> dict:
    assert response.status == status
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status
    return body


async def test_unknown_path_is_a_404_problem(client):
    body = await problem(await client.get("/nowhere"), 404)
    assert "/upload" in body["detail"]


@pytest.mark.parametrize("method, path, allowed", [
    ("PATCH", "/list", {"GET", "HEAD"}),
    ("DELETE", "/info", {"GET", "HEAD"}),
    ("GET", "/delete?format=json", None),
    ("DELETE", "/upload", {"GET", "HEAD", "POST", "PUT"}),
])
async def test_wrong_method_is_a_405_problem_with_allow(client, method, path, allowed):
    response = await client.request(method, path)
    if allowed is None:  # GET /delete is the page that asks for a name
        assert response.status == 200
        return
    body = await problem(response, 405)
    assert set(response.headers["Allow"].split(",")) == allowed
    assert method in body["detail"]


async def test_a_browser_gets_errors_as_pages_in_the_layout(client, browser_headers):
    response = await client.get("/nowhere", headers=browser_headers)
    assert response.status == 404 and response.content_type == "text/html"
    page = await response.text()
    assert "Library" in page and "404" in page


async def test_index_shows_the_menu_and_the_count(client, upload):
    await upload("a.wav")
    page = await (await client.get("/")).text()
    for item in ("Upload", "Library", "Info", "Download", "Delete"):
        assert f"<strong>{item}</strong>" in page
    assert "1 file, 0:01 in all" in page
