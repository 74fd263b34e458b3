"""Handling a work item in a real headless Chromium: filter, assign, mark done; state survives."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sawubona
from sawubona.work import Worklist, worklist_path

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def store(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser-work") / "demo.duckdb"
    shutil.copy(demo_store, path)
    shutil.copy(worklist_path(demo_store), worklist_path(path))
    return path


@contextlib.contextmanager
def serving(store: Path) -> Iterator[str]:
    """The web app on a free port, stopped (and its read-only store closed) on exit."""
    import uvicorn

    from sawubona.web.app import create_app

    port = _free_port()
    app = create_app(store)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        app.state.store.close()


def test_handle_an_item_in_the_browser(store: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with serving(store) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"{server}/work")
        page.select_option("select[name=kind]", "make_right")
        page.click("form.work-filters button")
        page.wait_for_url("**/work?*kind=make_right*")
        kinds = page.locator("table.work tbody tr td:nth-child(2)").all_inner_texts()
        assert kinds and all(k.startswith("make_right") for k in kinds)
        page.locator("a.work-item").first.click()
        page.wait_for_url("**/work/w*")
        item_id = page.url.rstrip("/").split("/")[-1]
        assert page.inner_text("#work-state") == "open"
        assign = page.locator("form[action$='/assign']")
        assign.locator("input[name=owner]").fill("ana")
        assign.locator("input[name=author]").fill("zoe")
        assign.locator("button").click()
        page.wait_for_load_state()
        assert page.inner_text("#work-state") == "assigned"
        done = page.locator("form[action$='/done']")
        assert done.locator("input[name=author]").input_value() == "zoe"  # remembered
        done.locator("textarea[name=note]").fill("Rang her, apologised, credited <£15>")
        done.locator("select[name=kind]").select_option("credited")
        done.locator("input[name=link]").fill("action:X000000001")
        done.locator("button").click()
        page.wait_for_load_state()
        assert page.inner_text("#work-state") == "done"
        assert "credited <£15>" in page.inner_text("main")  # escaped, shown as text
        history = page.inner_text("#work-history")
        assert "zoe" in history and "assigned" in history
        browser.close()
    with sawubona.open(store) as s:  # re-analyse: the handled item keeps its state
        s.analyze(["promises"])
    with Worklist(worklist_path(store)) as wl:
        item = wl.get(item_id)
        assert item["state"] == "done" and item["done_kind"] == "credited"
        assert item["link"] == "action:X000000001"
        assert [e["who"] for e in wl.events(item_id)][-2:] == ["zoe", "zoe"]
