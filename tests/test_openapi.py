"""/openapi.json is true: it names every route and nothing else, it is valid
OpenAPI 3.1, and a live server answers schemathesis's generated requests
without a 5xx and as the document says."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import audiofiles
from audioserver.web.openapi import document
from serverprocess import ServerProcess, account

OPERATIONS = ("get", "put", "post", "delete", "patch", "options")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]


def documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document()["paths"].items()
            for method in item if method in OPERATIONS}


async def test_every_route_is_documented_and_nothing_else(client):
    routes = {(route.method, route.resource.canonical) for route in client.app.router.routes()
              if route.method != "HEAD" and not route.resource.canonical.startswith("/static")}
    assert routes == documented()


def test_the_document_is_valid_openapi():
    validate(document())


async def test_it_is_served(client):
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert await response.json() == document()


@pytest.fixture(scope="module", params=["open", "users"])
def live_server(request, tmp_path_factory):
    """Rate limits off (schemathesis is a flood by design), in either mode;
    with accounts, requests carry a user's API token."""
    tmp = tmp_path_factory.mktemp(f"openapi-{request.param}")
    server = ServerProcess(tmp / "data", tmp, workers=1, env={
        "AUDIOSERVER_READ_RATE": "off", "AUDIOSERVER_WRITE_RATE": "off",
        "AUDIOSERVER_UPLOAD_RATE": "off", "AUDIOSERVER_MAX_UPLOAD_SIZE": "256K"})
    if request.param == "users":
        server.headers = account(server.data_dir, "alice", "correct horse battery")
    server.start(server.command("--auth", request.param))
    # Something to find, so not every generated name misses.
    for name in ["a.wav", "b.wav", "0"]:
        server.put(name, audiofiles.wav(0.5))
    yield server
    server.kill()


# From the document itself: the server's address is given with each call.
schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_server_answers_as_documented(case, live_server):
    case.call_and_validate(base_url=f"http://127.0.0.1:{live_server.port}", checks=CHECKS,
                           headers=live_server.headers)
