"""The SDK's client: what it sends, and the API's errors as ApiError (the routes themselves run in the demo's test)."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx2
import pytest

from sdk.client import ApiError, Tollgate, Unreachable


def _api(answer: httpx2.Response, seen: list[httpx2.Request]) -> Tollgate:
    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return answer

    return Tollgate("http://tollgate.test/", "tgt_key", transport=httpx2.MockTransport(handle))


def test_requests_carry_the_key_and_the_api_bodies() -> None:
    seen: list[httpx2.Request] = []
    api = _api(httpx2.Response(201, json={"id": "a1", "name": "factor"}), seen)
    made = api.actions.create("factor", "exports.onExecutePostLogin = async () => {};", secrets={"S": "v"})
    assert made["id"] == "a1"
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "http://tollgate.test/api/v2/actions/actions")
    assert request.headers["authorization"] == "Bearer tgt_key"
    body: dict[str, Any] = json.loads(request.content)
    assert body["supported_triggers"] == [{"id": "post-login"}]
    assert body["secrets"] == [{"name": "S", "value": "v"}]


def test_no_content_is_none() -> None:
    seen: list[httpx2.Request] = []
    assert _api(httpx2.Response(204), seen).tenants.delete("t1") is None
    assert (seen[0].method, seen[0].url.path) == ("DELETE", "/api/v2/tenants/t1")


def test_the_apis_error_body_becomes_an_api_error() -> None:
    body = {"statusCode": 400, "error": "Bad Request", "message": "Unexpected token", "errorCode": "action_syntax",
            "line": 3, "column": 7}  # fmt: skip
    api = _api(httpx2.Response(400, json=body), [])
    with pytest.raises(ApiError) as caught:
        api.actions.create("broken", "exports.onExecutePostLogin = async (")
    error = caught.value
    assert (error.status, error.code, error.message) == (400, "action_syntax", "Unexpected token")
    assert error.body["line"] == 3
    assert str(error) == "Unexpected token (HTTP 400, action_syntax)"


def test_an_answer_that_is_not_the_apis_says_what_came_back() -> None:
    api = _api(httpx2.Response(502, text="<html>Bad gateway</html>"), [])
    with pytest.raises(ApiError) as caught:
        api.tenants.list()
    assert caught.value.status == 502 and caught.value.code == "http_error"
    assert "Bad gateway" in caught.value.message


def test_a_server_that_does_not_answer_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Tollgate(f"http://127.0.0.1:{port}", "key", timeout=5) as api, pytest.raises(Unreachable) as caught:
        api.tenants.list()
    assert f"the Tollgate server at http://127.0.0.1:{port} cannot be reached" in str(caught.value)
