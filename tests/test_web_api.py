"""The JSON API and the HTML pages through FastAPI's test client (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import HOSTILE_COMMENT, HOSTILE_NAME
from sawubona.errors import SawubonaError
from sawubona.web import check_bind, is_local
from sawubona.web.app import create_app


@pytest.fixture(scope="module")
def client(demo_store: Path) -> TestClient:
    return TestClient(create_app(demo_store))


def test_every_openapi_endpoint_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["paths"]
    items = client.get("/api/work").json()["rows"]
    assert items, "the analysed demo world has work items"
    readable = 0
    for path, methods in spec["paths"].items():
        if "get" not in methods:  # the worklist's writes: tests/test_work.py drives them
            assert set(methods) == {"post"} and path.startswith("/api/work/"), path
            continue
        url = (
            path.replace("{name}", "customers")
            .replace("{customer_id}", "C0000001")
            .replace("{item_id}", str(items[0]["item_id"]))
        )
        res = client.get(url)
        assert res.status_code == 200, (url, res.text[:200])
        readable += 1
    assert readable >= 10


def test_tables_page_and_filter(client: TestClient) -> None:
    first = client.get("/api/tables/touchpoints", params={"page_size": 7}).json()
    assert len(first["rows"]) == 7 and first["total"] > 7 and first["pages"] > 1
    second = client.get("/api/tables/touchpoints", params={"page_size": 7, "page": 2}).json()
    ids = {r["touchpoint_id"] for r in first["rows"]}
    assert not ids & {r["touchpoint_id"] for r in second["rows"]}
    only = client.get("/api/tables/touchpoints", params={"customer_id": "C0000001"}).json()
    assert only["rows"] and {r["customer_id"] for r in only["rows"]} == {"C0000001"}
    assert client.get("/api/tables/touchpoints", params={"nope": "1"}).status_code == 400
    assert client.get("/api/tables/nope").status_code == 404


def test_unknown_customer_is_a_json_404(client: TestClient) -> None:
    res = client.get("/api/customers/no-such-customer-xyz")
    assert res.status_code == 404 and "no customer has the id" in res.json()["error"]
    assert client.get("/customer/no-such-customer-xyz").status_code == 404


def test_portrait_json_has_every_section(client: TestClient) -> None:
    p = client.get("/api/customers/C0000001").json()
    assert p["customer_id"] == "C0000001"
    assert {"who", "story", "sections", "do_not", "lenses"} <= set(p)
    assert p["story"] and all("ref" in e for e in p["story"])


def test_search_by_name_and_paging(client: TestClient) -> None:
    p = client.get("/api/customers/C0000002").json()
    first_name = p["who"]["name"].split()[0]
    found = client.get("/api/customers", params={"q": first_name.lower()}).json()
    assert found["total"] >= 1
    assert all(
        first_name.lower() in (r["name"] or "").lower()
        or first_name.lower() in r["customer_id"].lower()
        or first_name.lower() in (r["email"] or "").lower()
        for r in found["rows"]
    )


def test_hostile_text_is_escaped_in_html(client: TestClient) -> None:
    html = client.get("/customer/X%3Cscript%3E1").text
    assert "<script>" not in html and 'onerror="window' not in html
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    assert HOSTILE_NAME not in html and HOSTILE_COMMENT not in html


def test_security_headers(client: TestClient) -> None:
    res = client.get("/")
    csp = res.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert res.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/../../cli.py").status_code == 404


def test_token_is_required_when_set(demo_store: Path) -> None:
    locked = TestClient(create_app(demo_store, token="s3cret"))
    assert locked.get("/api/tables").status_code == 401
    assert locked.get("/api/tables", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert locked.get("/api/tables", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    res = locked.get("/", params={"token": "s3cret"})
    assert res.status_code == 200 and "sawubona_token" in res.headers.get("set-cookie", "")


def test_non_local_bind_needs_a_token() -> None:
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.4")
    with pytest.raises(SawubonaError, match="without a token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "t")
    check_bind("127.0.0.1", None)
