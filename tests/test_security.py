"""Web security, OWASP-style (the list is docs/security.md): injection, escaping, headers,
path traversal, authentication, cross-site writes. Complements tests/test_web_api.py and
tests/test_browser.py, which cover the basics these build on."""

from __future__ import annotations

import hmac
import http.client
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import sawubona
from conftest import HOSTILE_COMMENT, HOSTILE_NAME
from sawubona.web.app import SECURITY_HEADERS, create_app

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HOSTILE_ID = "X<script>1"


@pytest.fixture(scope="module")
def client(demo_store: Path) -> TestClient:
    return TestClient(create_app(demo_store))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live(demo_store: Path) -> Iterator[int]:
    """The real server (uvicorn) on loopback: raw request lines reach it unnormalised."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sawubona",
            "serve",
            "--store",
            str(demo_store),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (no client-side normalising)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


TRAVERSALS = [
    "/static/../../cli.py",
    "/static/..%2f..%2fcli.py",
    "/static/%2e%2e/%2e%2e/cli.py",
    "/static/%2e%2e%2f%2e%2e%2fcli.py",
    "/static/..%5c..%5ccli.py",
    "/static/....//....//cli.py",
    "/static/%252e%252e/%252e%252e/cli.py",
    "/static//etc/passwd",
    "/static/../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/style.css%00.py",
    "/static/..",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_static_path_traversal_is_refused(live: int, target: str) -> None:
    status, body = _raw_get(live, target)
    assert status in (400, 404), (target, status)
    assert b"root:" not in body and b"def main" not in body and b"import typer" not in body
    ok, css = _raw_get(live, "/static/style.css")  # the real file is served
    assert ok == 200 and b"{" in css


PAGES = [
    "/",
    "/data",
    "/customers",
    "/customers?q=%3Cscript%3E",
    "/customer/X%3Cscript%3E1",
    "/customer/C0000001",
    "/table/customers",
    "/table/customers?customer_id=X%3Cscript%3E1",
    "/table/no-such-table",
    "/lens/voice",
    "/lens/experience",
    "/lens/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "/work",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, name.lower(), value or "") for name, value in attrs]


def _attributes(html: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every real tag (escaped text is not a tag)."""
    parser = _Tags()
    parser.feed(html)
    return parser.attributes


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_the_exact_csp_and_no_inline_script(client: TestClient, path: str) -> None:
    res = client.get(path)
    assert res.headers["content-security-policy"] == CSP
    for name, value in SECURITY_HEADERS.items():
        assert res.headers[name] == value
    html = res.text
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "http:" not in CSP
    # No inline script, no event handler attributes, no javascript: links.
    for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I):
        assert re.search(r"\bsrc=\"/static/", tag), tag
    assert re.search(r"<script\b[^>]*>\s*\S", html, flags=re.I) is None
    attributes = _attributes(html)
    assert not [a for a in attributes if a[1].startswith("on")], path
    assert "javascript:" not in html.lower()
    # Every asset is local: nothing loads from another host.
    for _, name, url in attributes:
        if name in ("src", "href", "action"):
            assert not re.match(r"^\s*(https?:)?//", url), (path, url)


def test_hostile_values_come_back_escaped_everywhere(client: TestClient) -> None:
    payloads = [HOSTILE_ID, HOSTILE_NAME, HOSTILE_COMMENT, '"><svg onload=alert(1)>']
    for path, params in [
        ("/customers", {"q": payloads[3]}),
        ("/table/customers", {"customer_id": HOSTILE_ID}),
        ("/table/surveys", {"customer_id": HOSTILE_ID}),
        ("/customer/" + "X%3Cscript%3E1", {}),
        ("/table/nope" + "%3Cscript%3E", {}),
    ]:
        html = client.get(path, params=params).text
        for p in payloads:
            assert p not in html, (path, p)
        assert "<svg" not in html and "<script>" not in html


SQL_PAYLOADS = [
    "' OR 1=1 --",
    "'; DROP TABLE customers; --",
    '" OR ""="',
    "%' OR '%'='",
    "1; SELECT * FROM quarantine",
    "\\'; ATTACH '/tmp/x.duckdb' AS x; --",
]


def test_no_sql_is_built_from_request_strings(client: TestClient, demo_store: Path) -> None:
    with sawubona.open(demo_store, read_only=True) as s:
        before = s.counts()
    for payload in SQL_PAYLOADS:
        # search text: found literally or not at all, never "every customer"
        found = client.get("/api/customers", params={"q": payload}).json()
        assert found["total"] == 0, payload
        # a filter value: compared as a value
        rows = client.get("/api/tables/customers", params={"customer_id": payload}).json()
        assert rows["total"] == 0, payload
        # a filter column or a table name: refused by name, never pasted
        bad_col = client.get("/api/tables/customers", params={payload: "x"})
        assert bad_col.status_code == 400, payload
        bad_table = client.get(f"/api/tables/{payload}")
        assert bad_table.status_code in (404, 400), payload
        assert client.get("/api/findings", params={"lens": payload}).json() == []
    assert client.get("/api/customers", params={"q": "c0000001"}).json()["total"] >= 1
    with sawubona.open(demo_store, read_only=True) as s:
        assert s.counts() == before


def test_token_comparison_is_constant_time(
    demo_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every token check goes through hmac.compare_digest (whose time does not depend on
    where the strings differ), for a header, a cookie and a query parameter."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    locked = TestClient(create_app(demo_store, token="correct-horse"))
    assert (
        locked.get("/api/tables", headers={"Authorization": "Bearer correct-hors_"}).status_code
        == 401
    )
    assert locked.get("/api/tables", headers={"Authorization": "Bearer "}).status_code == 401
    assert locked.get("/api/tables", cookies={"sawubona_token": "x"}).status_code == 401
    assert locked.get("/api/tables", params={"token": "correct-horse"}).status_code == 200
    assert len(calls) == 4 and all(b == b"correct-horse" for _, b in calls)
    # the 401 itself carries the security headers and says what to do in one sentence
    res = TestClient(create_app(demo_store, token="correct-horse")).get("/")
    assert res.status_code == 401 and res.headers["content-security-policy"] == CSP
    assert "token is required" in res.json()["error"]


def test_serving_off_loopback_without_a_token_is_refused(demo_store: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sawubona",
            "serve",
            "--store",
            str(demo_store),
            "--host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in __import__("os").environ.items() if k != "SAWUBONA_TOKEN"},
    )
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to serve on 0.0.0.0 without a token" in lines[0]


def test_cross_site_writes_are_refused(demo_store: Path) -> None:
    """CSRF: a write from another site's page is refused before anything is looked up."""
    app = TestClient(create_app(demo_store))
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site too
    ):
        res = app.post(
            "/api/work/no-such-item/assign",
            json={"owner": "mallory", "author": "mallory"},
            headers=headers,
        )
        assert res.status_code == 403, (headers, res.text)
        form = app.post(
            "/work/no-such-item/dismiss",
            data={"reason": "x", "author": "m"},
            headers=headers,
            follow_redirects=False,
        )
        assert form.status_code == 403, headers
    same = app.post(
        "/api/work/no-such-item/assign",
        json={"owner": "o", "author": "a"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 404  # allowed through, and then the item is not found
    locked = TestClient(create_app(demo_store, token="s3cret-token"))
    res = locked.post(
        "/api/work/no-such-item/assign",
        json={"owner": "o", "author": "a"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert res.status_code == 401  # writes need the token as well


def test_errors_do_not_leak_internals(client: TestClient) -> None:
    for path in ("/api/tables/nope", "/api/customers/nope", "/api/tables/customers?zzz=1"):
        res = client.get(path)
        body = res.text
        assert res.status_code in (400, 404)
        assert "Traceback" not in body and "duckdb" not in body.lower() and "/work/" not in body


def test_raw_http_client_gets_security_headers_on_404(live: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", live, timeout=30)
    conn.request("GET", "/definitely/not/here")
    res = conn.getresponse()
    res.read()
    assert res.status == 404
    assert res.getheader("content-security-policy") == CSP
    assert res.getheader("x-frame-options") == "DENY"


def test_page_sizes_are_bounded(client: TestClient) -> None:
    """No request can ask for an unbounded page (a cheap denial of service)."""
    assert client.get("/api/tables/touchpoints", params={"page_size": 10**6}).status_code == 422
    assert client.get("/api/tables/touchpoints", params={"page": 0}).status_code == 422
    assert client.get("/api/customers", params={"page_size": 501}).status_code == 422
    assert (
        len(client.get("/api/tables/touchpoints", params={"page_size": 500}).json()["rows"]) == 500
    )
