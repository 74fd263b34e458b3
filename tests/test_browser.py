"""The web app and the report in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import HOSTILE_COMMENT, ROOT

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(demo_store: Path) -> Iterator[str]:
    import uvicorn

    from sawubona.web.app import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(demo_store), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.requested = []
    pg.on("request", lambda r: pg.requested.append(r.url))
    yield pg
    context.close()


def _only_local(urls: list[str]) -> None:
    hosts = {urlparse(u).hostname for u in urls if not u.startswith(("data:", "about:"))}
    assert hosts <= {"127.0.0.1"}, hosts


def _shot(pg: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / name), full_page=False)  # type: ignore[attr-defined]


def test_overview_then_drill_down_to_a_portrait(page, server: str) -> None:
    page.goto(server + "/")
    assert page.locator("h1").inner_text() == "What sawubona sees"
    _shot(page, "overview.png")
    page.click("text=Data")
    page.click("a[href='/table/customers']")
    first = page.locator("table.data tbody tr td a").first
    customer_id = first.inner_text()
    first.click()
    page.wait_for_selector("#story")
    assert f"Customer {customer_id}" in page.locator("main p.muted").first.inner_text()
    assert page.locator("#story li").count() > 0
    _shot(page, "portrait.png")
    _only_local(page.requested)


def _charts_drawn(pg: object) -> int:
    """How many inline SVG charts on the page have a visible size and at least one mark."""
    return int(
        pg.evaluate(  # type: ignore[attr-defined]
            """() => [...document.querySelectorAll('main svg')].filter(svg => {
                const box = svg.getBoundingClientRect();
                const marks = svg.querySelectorAll('rect, path, circle, line, polyline');
                return box.width > 50 && box.height > 20 && marks.length > 0;
            }).length"""
        )
    )


def test_charts_render_on_the_overview_and_the_lens_pages(page, server: str) -> None:
    page.goto(server + "/")
    charts = page.locator("main .chartbox").count()
    assert charts > 0
    assert _charts_drawn(page) >= charts
    lenses = [a.get_attribute("href") for a in page.locator("main h2 a[href^='/lens/']").all()]
    assert len(lenses) >= 5
    drawn = 0
    for href in lenses:
        page.goto(server + str(href))
        drawn += _charts_drawn(page)
    assert drawn >= charts
    _only_local(page.requested)


def test_a_lens_figure_drills_down_to_the_customers_behind_it(page, server: str) -> None:
    """Overview → a lens → one of its findings' rows → a customer in them → the portrait."""
    page.goto(server + "/")
    lenses = [a.get_attribute("href") for a in page.locator("main h2 a[href^='/lens/']").all()]
    found = None
    for lens in lenses:
        page.goto(server + str(lens))
        for href in [a.get_attribute("href") for a in page.locator("ul.findings a").all()]:
            page.goto(server + str(href))
            if page.locator("table.data tbody a[href^='/customer/']").count():
                found = (lens, href)
                break
        if found:
            break
    assert found, "no lens finding leads to rows with customers"
    assert "?" in str(found[1])  # the finding's own rows, filtered, not the whole table
    people = page.locator("table.data tbody a[href^='/customer/']")
    customer_id = people.first.inner_text()
    people.first.click()
    page.wait_for_selector("#story")
    assert f"Customer {customer_id}" in page.locator("main p.muted").first.inner_text()
    _only_local(page.requested)


def test_search_finds_a_customer(page, server: str) -> None:
    page.goto(server + "/")
    page.fill("header input[type=search]", "C0000003")
    page.press("header input[type=search]", "Enter")
    page.wait_for_selector("table.data")
    assert "C0000003" in page.locator("table.data tbody").inner_text()
    page.click("table.data tbody a:text('C0000003')")
    page.wait_for_selector("#story")
    _only_local(page.requested)


def test_hostile_text_is_shown_never_run(page, server: str) -> None:
    page.goto(server + "/customers?q=eve")
    page.click("table.data tbody a")
    page.wait_for_selector("#story")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert "<script>window.__xss = 1</script>" in page.locator("h1").inner_text()
    assert HOSTILE_COMMENT in page.locator("#story").inner_text()
    assert page.locator("main img").count() == 0
    _only_local(page.requested)


def test_report_opens_offline_with_every_section(browser, demo_store: Path, tmp_path: Path) -> None:
    import sawubona
    from sawubona.report import write_report

    with sawubona.open(demo_store, read_only=True) as s:
        out = write_report(s, tmp_path / "report.html")
        from sawubona.report.overview import build_overview

        sections = [sec.name for sec in build_overview(s).lenses]
    context = browser.new_context()  # type: ignore[attr-defined]
    context.set_offline(True)
    pg = context.new_page()
    outside: list[str] = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith("file:") else None)
    pg.goto(out.as_uri())
    assert pg.locator("h1").inner_text() == "What sawubona sees"
    for name in sections:
        assert pg.locator(f"#lens-{name}").count() == 1, name
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
    assert outside == []
    context.close()
