"""Bad input gets a clear 4xx, nothing is half-written, and the service keeps serving."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.fix_api import TenantClient

CODE = "exports.onExecutePostLogin = async (event, api) => {};"
GOOD = {"name": "ok", "supported_triggers": [{"id": "post-login", "version": "v3"}], "code": CODE}


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"name": "x",}', "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "must be a JSON object"),
        (b'{"name": NaN}', "application/json", 400, "not valid JSON"),
        (b'{"name": "\xff\xfe"}', "application/json", 400, "not valid UTF-8"),
        (
            b'{"name": "a\\u0000b", "supported_triggers": [{"id": "post-login"}], "code": "x"}',
            "application/json",
            400,
            "NUL",
        ),
        (
            b'{"name": "x", "supported_triggers": [{"id": "post-login", "k\\u0000": 1}], "code": "x"}',
            "application/json",
            400,
            "NUL",
        ),
        (
            b'{"name": "a\\\\u0000b", "supported_triggers": [{"id": "post-login"}], "code": "x", "status": 1}',
            "application/json",
            400,
            "unknown field 'status'",  # a backslash, then the text u0000: no NUL
        ),
        (b"name=x", "application/x-www-form-urlencoded", 415, "as JSON"),
        (b'{"name": 5, "supported_triggers": [{"id": "post-login"}], "code": "x"}', "application/json", 400, "name"),
        (
            b'{"name": "x", "supported_triggers": "post-login", "code": "x"}',
            "application/json",
            400,
            "supported_triggers",
        ),
        (
            b'{"name": "x", "supported_triggers": [{"id": "post-login"}]}',
            "application/json",
            400,
            "missing field 'code'",
        ),
        (
            b'{"name": "x", "supported_triggers": [{"id": "post-login"}], "code": "x", "status": "built"}',
            "application/json",
            400,
            "unknown field 'status'",
        ),
        (
            b'{"name": "x", "supported_triggers": [{"id": "post-login"}], "code": "x", "deploy": "yes"}',
            "application/json",
            400,
            "deploy",
        ),
        (
            b'{"name": "x", "supported_triggers": [{"id": "pre-user-registration"}], "code": "x"}',
            "application/json",
            400,
            "Unknown trigger",
        ),
        (
            b'{"name": "x", "supported_triggers": [{"id": "post-login"}], "code": "x", "runtime": "python3"}',
            "application/json",
            400,
            "runtime",
        ),
    ],
    ids=[
        "malformed",
        "trailing-comma",
        "array",
        "nan",
        "bad-utf8",
        "nul",
        "nul-in-a-nested-key",
        "escaped-backslash-is-not-nul",
        "form",
        "wrong-type",
        "not-a-list",
        "missing",
        "mass-assignment",
        "string-bool",
        "unknown-trigger",
        "unknown-runtime",
    ],
)
def test_bad_bodies_are_refused_clearly(
    tenant: TenantClient, content: bytes, content_type: str, status: int, message: str
) -> None:
    """Each bad body gets its status and a message naming the problem; nothing is created."""
    reply = tenant.client.post(
        "/api/v2/actions/actions", content=content, headers={**tenant.headers, "Content-Type": content_type}
    )
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) >= {"statusCode", "error", "message", "errorCode"}
    assert message in body["message"]
    assert tenant.get("/api/v2/actions/actions").json()["total"] == 0
    assert tenant.post("/api/v2/actions/actions", json=GOOD).status_code == 201


def test_huge_bodies_are_refused_while_streaming(tenant: TenantClient) -> None:
    """A body over the cap is refused with 413, whether or not it declares its length."""

    def chunks() -> Any:
        for _ in range(64):
            yield b"x" * 65536

    declared = tenant.client.post(
        "/api/v2/actions/actions", content=b"{" + b" " * (4 * 1024 * 1024) + b"}",
        headers={**tenant.headers, "Content-Type": "application/json"},
    )  # fmt: skip
    assert declared.status_code == 413 and declared.json()["errorCode"] == "body_too_large"
    streamed = tenant.client.post(
        "/api/v2/actions/actions", content=chunks(), headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert tenant.post("/api/v2/actions/actions", json=GOOD).status_code == 201


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v2/actions/actions/not-a-uuid", None),
        ("GET", "/api/v2/actions/actions/00000000-0000-0000-0000-000000000000/versions/zzz", None),
        ("GET", "/api/v2/actions/executions/%00", None),
        ("PATCH", "/api/v2/actions/triggers/no-such-trigger/bindings", {"bindings": []}),
        ("GET", "/api/v2/users/auth0%7Cnobody", None),
        # A NUL in a free-text id (PostgreSQL's text cannot hold one): was a 500.
        ("GET", "/api/v2/users/auth0%7C%00", None),
        ("PATCH", "/api/v2/users/%00", {"name": "x"}),
        ("DELETE", "/api/v2/users/a%00b", None),
    ],
)
def test_malformed_ids_are_simply_not_found(tenant: TenantClient, method: str, path: str, body: Any) -> None:
    """An id that cannot exist is a 404 like any unknown id, never a 500."""
    reply = tenant.client.request(method, path, headers=tenant.headers, json=body)
    assert reply.status_code == 404, reply.text


def test_bad_query_parameters_are_400(tenant: TenantClient) -> None:
    """Paging parameters must be numbers."""
    assert tenant.get("/api/v2/actions/actions", params={"page": "two"}).status_code == 400


def test_unknown_routes_and_methods_answer_in_json(api: TestClient, tenant: TenantClient) -> None:
    """404 and 405 use the same JSON error shape."""
    assert api.get("/api/v2/nothing-here").json()["errorCode"] == "not_found"
    reply = tenant.client.put("/api/v2/actions/actions", headers=tenant.headers, json={})
    assert reply.status_code == 405 and reply.json()["errorCode"] == "method_not_allowed"


def test_the_openapi_document_describes_every_route(api: TestClient) -> None:
    """/api/v2/openapi.json lists every endpoint with its body schema."""
    from runtime.api.routes import ENDPOINTS

    doc = api.get("/api/v2/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for endpoint in ENDPOINTS:
        operation = doc["paths"][endpoint.path][endpoint.method.lower()]
        assert operation["summary"] == endpoint.summary
        if endpoint.body is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    create = doc["components"]["schemas"]["ActionCreate"]
    assert create["additionalProperties"] is False
    assert set(create["required"]) == {"name", "supported_triggers", "code"}


@pytest.mark.parametrize("path", ["/api/v2/actions/actions", "/api/v2/users"])
@pytest.mark.parametrize("query", ["page=abc", "per_page=1e3", "page=1&per_page="])
def test_paging_parameters_must_be_whole_numbers(tenant: TenantClient, path: str, query: str) -> None:
    reply = tenant.get(f"{path}?{query}")
    assert reply.status_code == 400
    assert reply.json()["errorCode"] == "invalid_query"
    assert tenant.get(f"{path}?page=0&per_page=500").status_code == 200  # clamped, not refused


def test_a_key_of_a_tenant_deleted_elsewhere_gets_404_not_500(make_tenant: Any, database_url: str) -> None:
    """Another server process deleted the tenant; this one still trusts the key for a few seconds."""
    import psycopg

    doomed = make_tenant()
    assert doomed.get("/api/v2/actions/actions").status_code == 200  # the key is now remembered
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM tenants WHERE id = %s", (doomed.id,))
    reply = doomed.post("/api/v2/actions/actions", json=GOOD)
    assert reply.status_code == 404 and reply.json()["errorCode"] == "not_found", reply.text
    client = doomed.post("/api/v2/clients", json={"name": "app", "callbacks": ["https://app.example/cb"]})
    assert client.status_code == 404 and client.json()["errorCode"] == "not_found", client.text
    listed = doomed.get("/api/v2/actions/actions")
    assert listed.status_code == 200 and listed.json()["actions"] == []


def test_a_value_the_database_refuses_is_a_400_not_a_500(database_url: str) -> None:
    """A value that reaches PostgreSQL and is refused as data (a NUL in text, a number out of its column's
    range) is the request's fault: a 400 that names no internals, not a 500."""
    import psycopg

    from runtime.api.errors import _as_api_error

    refused = []
    with psycopg.connect(database_url) as conn:
        for query, value in (("SELECT %s::text", "a\x00b"), ("SELECT %s::smallint", 1 << 20)):
            try:
                conn.execute(query, (value,))
            except psycopg.DataError as exc:
                refused.append(exc)
            conn.rollback()
    assert len(refused) == 2
    for exc in refused:
        error = _as_api_error(exc)
        assert (error.status, error.code) == (400, "invalid_request")
        assert "smallint" not in error.message and "0x00" not in error.message


def test_no_route_answers_malformed_ids_bodies_or_queries_with_a_500(
    api: TestClient, tenant: TenantClient, operator_headers: dict[str, str]
) -> None:
    """Every route of the OpenAPI document, with each kind of key: ids that cannot exist (a NUL, a path
    climb, 300 characters), bodies that are not what it takes, query parameters it cannot read. Each gets
    an answer below 500, a refusal in the API's error shape; none is a crash."""
    import re

    # Exceptions raised through the app fail the test even when they were answered (they are logged as crashes).
    strict = TestClient(api.app, raise_server_exceptions=True)
    strict.portal = api.portal  # the server's event loop: its database pool belongs to it
    paths = api.get("/api/v2/openapi.json").json()["paths"]
    ids = ["x", "%00", "..%2F..%2Fetc", "a" * 300]
    bodies = [b"", b"{", b"null", b'{"name": "a\\u0000b"}']
    queries = ["?from=%00&to=%ff&page=-1&per_page=9999999999999999999999", "?q=%00&name=a%00b&email=%00"]
    crashes = []
    for template, operations in paths.items():
        if template.endswith("/stream"):  # a live stream: covered by its own tests
            continue
        for method in operations:
            for value in ids:
                path = re.sub(r"\{[^}]+\}", value, template)
                for headers in (tenant.headers, operator_headers):
                    sent = [(query, b"") for query in queries] if method == "get" else [("", b) for b in bodies]
                    for query, body in sent:
                        reply = strict.request(method.upper(), path + query, content=body,
                                               headers={**headers, "Content-Type": "application/json"})  # fmt: skip
                        refused = reply.status_code >= 400
                        if reply.status_code >= 500 or (refused and "errorCode" not in reply.json()):
                            crashes.append(f"{method.upper()} {path}{query} {body!r}: {reply.status_code}")
    assert crashes == []


def test_a_nul_in_a_login_url_or_form_is_refused_not_a_crash(api: TestClient, tenant: TenantClient) -> None:
    """The login plane takes a NUL character where the database cannot: in the tenant's name (404, no such
    page) or a form field (400): answered with an error page, never raised through the app as a crash."""
    strict = TestClient(api.app, raise_server_exceptions=True, follow_redirects=False)
    strict.portal = api.portal  # the server's event loop: its database pool belongs to it
    for method, path in (("GET", "/t/%00/authorize"), ("GET", "/t/a%00/continue?state=x"),
                         ("GET", "/t/%00/.well-known/jwks.json"), ("POST", "/t/%00/oauth/token")):  # fmt: skip
        assert strict.request(method, path).status_code == 404, path
    for form in ({"login_request": "a\x00", "email": "x@example.com", "password": "x"},
                 {"state": "a\x00b"}):  # fmt: skip
        path = f"/t/{tenant.name}/login" if "email" in form else f"/t/{tenant.name}/continue"
        reply = strict.post(path, data=form)
        assert reply.status_code == 400 and "<title>Login failed</title>" in reply.text, path


def test_routes_answered_from_the_table_check_and_fail_as_the_router_did(api: TestClient, tenant: TenantClient) -> None:
    """The API's routes without path parameters skip Starlette's router (runtime/api/app.py): the key and the
    body are still checked, errors are the same JSON, and another method still gets the router's 405."""
    missing = api.post("/api/v2/flows/post-login", json={})
    assert missing.status_code == 401 and missing.json()["errorCode"] == "missing_key"
    broken = tenant.client.post("/api/v2/flows/post-login", headers=tenant.headers, content=b"{not json")
    assert broken.status_code == 400 and broken.json()["errorCode"] == "invalid_body"
    other = tenant.client.get("/api/v2/flows/post-login", headers=tenant.headers)
    assert other.status_code == 405 and other.json()["errorCode"] == "method_not_allowed"
    listed = tenant.get("/api/v2/actions/actions")
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
