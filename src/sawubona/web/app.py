"""The web app: overview, lens pages, drill-down tables, customer search, portraits, JSON API.

Server-rendered (Jinja2 with autoescape: every piece of customer text is
escaped), charts as inline SVG, the stylesheet served from the package: no CDN,
no inline script, so it works offline under a strict Content-Security-Policy.
It only reads the store (read-only connection) and calls library functions.

Binding: 127.0.0.1 by default. On any other address a token is required, and
then every request must carry it (``Authorization: Bearer TOKEN``, or
``?token=TOKEN`` once, which sets a cookie); it is compared in constant time.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hmac
import json
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import sawubona
from sawubona import backends, portrait
from sawubona.errors import StoreBusyError, UnknownCustomerError
from sawubona.report.overview import build_overview

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Page:
    """One page of rows from a table, with what is needed to link to its neighbours."""

    columns: list[str]
    rows: list[dict[str, Any]]
    total: int
    page: int
    size: int
    params: dict[str, str]

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    def query(self, page: int) -> dict[str, str]:
        return {**self.params, "page": str(page)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "page": self.page,
            "page_size": self.size,
            "pages": self.pages,
            "rows": self.rows,
        }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "·"
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        item = {}
        for k, v in r.items():
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                v = None
            elif isinstance(v, dt.datetime | dt.date):
                v = v.isoformat()
            item[k] = v
        out.append(item)
    return out


def _json_bytes(content: Any) -> bytes:
    """``content`` as the JSON bytes FastAPI would send for it, without its encoder.

    Returning a dict from an endpoint makes FastAPI walk it with ``jsonable_encoder``
    and validate it against the return type before ``json.dumps``: for a portrait
    (about 7 kB of JSON) that walk cost 1.4 ms of the request's CPU, three times the
    portrait's own Python (bench/bench_portrait.py). A portrait is plain JSON types
    already (:meth:`Portrait.to_dict`, :func:`_jsonable`), so it is dumped as Starlette's
    ``JSONResponse`` dumps; anything else falls back to ``jsonable_encoder``, and so does
    a float JSON cannot hold."""
    try:
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except (TypeError, ValueError):
        return bytes(JSONResponse(jsonable_encoder(content)).body)


class LiveStore:
    """The store as a writer last published it.

    A load or an analysis that runs while the app holds the store writes a copy and swaps
    it in when it finishes (see ``sawubona.backends.duckdb``); the app keeps answering
    from the version it has open and, on the next request after the swap, reopens the
    file. Callers hold the app's lock, except portraits: they run outside it, each thread
    on its own cursor, inside :meth:`reading`, and a swap waits until none is running.
    """

    def __init__(self, path: str | Path, *, mark: bool = True) -> None:
        from sawubona.backends.duckdb import serving_marker

        self._path = Path(path)
        self._store: sawubona.Store = sawubona.open(path, read_only=True)
        self._ino = self._inode()
        #: requests reading outside the app's lock (see ``reading``), and their signal
        self._readers = 0
        self._idle = threading.Condition()
        #: what every portrait of the open version shares (tables present, as_of, and the
        #: memory-mapped snapshot of the rows portraits read, when it matches this version)
        self._context: portrait.Context | None = None
        # tells writers to write a copy rather than take the file (backends.duckdb)
        # (``mark=False``: a server's supervisor process writes it, for all its workers)
        self._marker: Path | None = serving_marker(self._path) if mark else None
        if self._marker is not None:
            with contextlib.suppress(OSError):
                self._marker.write_text(str(os.getpid()))
                atexit.register(self.close)

    def close(self) -> None:
        if self._marker is not None:
            unmark(self._marker)
        self._store.close()

    def _inode(self) -> int | None:
        try:
            return os.stat(self._path).st_ino
        except OSError:
            return None

    def current(self) -> sawubona.Store:
        ino = self._inode()
        if self._ino is not None and ino is not None and ino != self._ino:
            with self._idle:  # portraits still reading the old version finish first
                while self._readers:
                    self._idle.wait()
            # close first: DuckDB hands out the database it has open for a path, not the new file
            self._store.close()
            self._ino = None
            self._context = None
        if self._ino is None:  # reopened now, or on a later request while a writer holds it
            self._store = sawubona.open(self._path, read_only=True)
            self._ino = ino
        return self._store

    @contextlib.contextmanager
    def reading(self, lock: threading.Lock) -> Iterator[tuple[sawubona.Store, portrait.Context]]:
        """The current version and its portrait context, to read from outside ``lock``.

        Taking ``lock`` only to look at the file (and reopen it after a swap), then
        reading on the thread's own cursor, lets portraits run in parallel with each
        other and with the pages that hold the lock; the version stays open until the
        last of them is done."""
        with lock:
            store = self.current()
            if self._context is None:  # opens the version's portrait snapshot, if fresh
                self._context = portrait.context(store)
            ctx = self._context
            with self._idle:
                self._readers += 1
        try:
            yield store, ctx
        finally:
            with self._idle:
                self._readers -= 1
                self._idle.notify_all()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)


class Guard:
    """The token check and the security headers, on every request.

    A plain ASGI middleware rather than ``@app.middleware("http")``: Starlette's
    ``BaseHTTPMiddleware`` runs each request through an extra task and memory stream,
    which cost as much as serving a static file (measured in bench/bench_portrait.py).
    The token is ``owner.state.token``: with one set, a request must carry it
    (``Authorization: Bearer``, the cookie, or ``?token=`` once, which sets the cookie)."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token: str | None = self.owner.state.token
        cookie: str | None = None
        if token:
            request = Request(scope)
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.cookies.get("sawubona_token", "")
            if not given and request.query_params.get("token"):
                given = request.query_params["token"]
                setter = Response()
                setter.set_cookie("sawubona_token", token, httponly=True, samesite="strict")
                cookie = setter.headers["set-cookie"]
            if not hmac.compare_digest(given.encode(), token.encode()):
                response = JSONResponse(
                    {"error": "a token is required: send Authorization: Bearer TOKEN"},
                    status_code=401,
                )
                response.headers.update(SECURITY_HEADERS)
                await response(scope, receive, send)
                return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if cookie is not None:
                    headers.append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_guarded)


def unmark(marker: Path) -> None:
    """Remove the ``<store>.serving`` marker if this process wrote it."""
    with contextlib.suppress(OSError):
        if marker.read_text().strip() == str(os.getpid()):
            marker.unlink()


def create_app(
    store_path: str | Path, *, token: str | None = None, mark_serving: bool = True
) -> FastAPI:
    """The FastAPI application over the store at ``store_path`` (opened read-only).

    ``mark_serving``: write ``<store>.serving`` (its pid) while the app is alive, so that
    writers write a copy and swap it in; off in the workers of ``serve --workers N``,
    whose supervisor writes it once for all of them."""
    store: Any = (
        sawubona.open(store_path, read_only=True)
        if backends.is_url(store_path)
        else LiveStore(store_path, mark=mark_serving)
    )
    lock = threading.Lock()
    app = FastAPI(
        title="sawubona",
        description="Every table, finding and customer portrait of a sawubona store.",
        version=sawubona.__version__,
        docs_url=None,  # the interactive docs page loads assets from a CDN: not offline
        redoc_url=None,
    )
    app.state.token = token
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters["fmt"] = _fmt
    env.filters["urlencode"] = lambda d: urlencode(d) if isinstance(d, dict) else escape(str(d))

    def ref_link(ref: dict[str, Any]) -> Markup:
        if not ref or "table" not in ref:
            return Markup("")
        params = {k: str(v) for k, v in ref.items() if k != "table" and v is not None}
        href = f"/table/{escape(ref['table'])}?{escape(urlencode(params))}"
        return Markup(f'<a class="small" href="{href}">rows</a>')

    env.globals["ref_link"] = ref_link
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    app.add_middleware(Guard, owner=app)

    def nav() -> list[str]:
        from sawubona import lenses

        return list(lenses.available())

    def render(request: Request, template: str, code: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.update(base="", report=False, nav_lenses=nav())
        return templates.TemplateResponse(request, template, ctx, status_code=code)

    def page_of(name: str, page: int, size: int, filters: dict[str, str]) -> Page:
        with lock:
            if not store.has_table(name):
                raise HTTPException(404, f"no table {name!r}")
            t = store.table(name)
            for col, value in filters.items():
                if col not in t.columns:
                    raise HTTPException(400, f"table {name} has no column {col!r}")
                t = t.filter(t[col].cast("string") == value)
            total = int(t.count().execute())
            size = max(1, min(size, MAX_PAGE_SIZE))
            page = max(1, page)
            rows = t.limit(size, offset=(page - 1) * size).to_pyarrow().to_pylist()
            return Page(list(t.columns), rows, total, page, size, filters)

    def filters_of(request: Request) -> dict[str, str]:
        return {
            k: v
            for k, v in request.query_params.items()
            if k not in ("page", "page_size", "token", "q")
        }

    def search(q: str | None, page: int, size: int) -> Page:
        with lock:
            t = store.table("customers")
            if q:
                needle = q.strip().lower()
                t = t.filter(
                    t.customer_id.lower().contains(needle)
                    | t["name"].fill_null("").lower().contains(needle)
                    | t.email.fill_null("").lower().contains(needle)
                )
            total = int(t.count().execute())
            size = max(1, min(size, MAX_PAGE_SIZE))
            rows = (
                t.select("customer_id", "name", "email", "segment", "joined_at")
                .order_by("customer_id")
                .limit(size, offset=(max(page, 1) - 1) * size)
                .to_pyarrow()
                .to_pylist()
            )
            return Page(
                ["customer_id", "name", "email", "segment", "joined_at"],
                rows,
                total,
                max(page, 1),
                size,
                {"q": q} if q else {},
            )

    # -- HTML pages -----------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview_page(request: Request) -> HTMLResponse:
        with lock:
            ov = build_overview(store)
        return render(request, "overview.html", ov=ov)

    @app.get("/lens/{name}", response_class=HTMLResponse, include_in_schema=False)
    def lens_page(request: Request, name: str) -> HTMLResponse:
        with lock:
            ov = build_overview(store)
        section = next((s for s in ov.lenses if s.name == name), None)
        if section is None:
            return render(
                request,
                "error.html",
                404,
                status="Not found",
                message=f"There is no lens called {name}.",
            )
        previews = [(t, page_of(t, 1, 10, {})) for t in section.tables]
        return render(request, "lens.html", s=section, previews=previews)

    @app.get("/table/{name}", response_class=HTMLResponse, include_in_schema=False)
    def table_page(request: Request, name: str, page: int = 1) -> HTMLResponse:
        try:
            data = page_of(name, page, PAGE_SIZE, filters_of(request))
        except HTTPException as exc:
            return render(
                request, "error.html", exc.status_code, status="Not found", message=str(exc.detail)
            )
        return render(request, "table.html", name=name, page=data, filters=filters_of(request))

    @app.get("/customers", response_class=HTMLResponse, include_in_schema=False)
    def customers_page(request: Request, q: str | None = None, page: int = 1) -> HTMLResponse:
        return render(request, "customers.html", q=q, page=search(q, page, PAGE_SIZE))

    def portrait_of(customer_id: str) -> portrait.Portrait:
        """One portrait: outside the app's lock on a served file (see LiveStore.reading)."""
        if isinstance(store, LiveStore):
            with store.reading(lock) as (current, ctx):
                return portrait.build(current, customer_id, ctx)
        with lock:
            return portrait.build(store, customer_id)

    @app.get("/customer/{customer_id}", response_class=HTMLResponse, include_in_schema=False)
    def portrait_page(request: Request, customer_id: str) -> HTMLResponse:
        try:
            p = portrait_of(customer_id)
        except UnknownCustomerError as exc:
            return render(request, "error.html", 404, status="Not found", message=str(exc))
        return render(request, "portrait.html", p=p)

    @app.get("/data", response_class=HTMLResponse, include_in_schema=False)
    def data_page(request: Request) -> HTMLResponse:
        with lock:
            counts = store.counts()
        return render(request, "data.html", counts=counts)

    # -- JSON API -------------------------------------------------------------------

    @app.get("/api/overview", tags=["api"])
    def api_overview() -> dict[str, Any]:
        """Headline findings of every lens, with n and intervals."""
        with lock:
            ov = build_overview(store)
        return {
            "store": ov.store,
            "as_of": ov.as_of.isoformat() if ov.as_of else None,
            "data": ov.data,
            "quarantined": ov.quarantined,
            "lenses": [
                {
                    "name": s.name,
                    "title": s.title,
                    "status": s.status,
                    "message": s.message,
                    "tables": s.tables,
                    "findings": _jsonable(s.findings),
                }
                for s in ov.lenses
            ],
        }

    @app.get("/api/tables", tags=["api"])
    def api_tables() -> dict[str, int]:
        """Every table in the store and its row count."""
        with lock:
            return store.counts()

    @app.get("/api/tables/{name}", tags=["api"])
    def api_table(
        request: Request,
        name: str,
        page: int = Query(1, ge=1),
        page_size: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> dict[str, Any]:
        """A page of rows; other query parameters filter by column = value."""
        data = page_of(name, page, page_size, filters_of(request))
        out = data.to_dict()
        out["rows"] = _jsonable(out["rows"])
        return out

    @app.get("/api/findings", tags=["api"])
    def api_findings(lens: str | None = None) -> list[dict[str, Any]]:
        """Findings (sentences with numbers) of every lens, or of one."""
        data = page_of("findings", 1, MAX_PAGE_SIZE, {"lens": lens} if lens else {})
        return _jsonable(data.rows)

    @app.get("/api/customers", tags=["api"])
    def api_customers(
        q: str | None = None,
        page: int = Query(1, ge=1),
        page_size: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> dict[str, Any]:
        """Search customers by id, name or e-mail."""
        out = search(q, page, page_size).to_dict()
        out["rows"] = _jsonable(out["rows"])
        return out

    @app.get("/api/customers/{customer_id}", tags=["api"])
    def api_customer(customer_id: str) -> Response:
        """The portrait of one customer."""
        try:
            p = portrait_of(customer_id)
        except UnknownCustomerError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        d = p.to_dict()
        d["lenses"] = {k: _jsonable(v) for k, v in d["lenses"].items()}
        return Response(_json_bytes(d), media_type="application/json")

    @app.exception_handler(StoreBusyError)
    async def busy(request: Request, exc: StoreBusyError) -> Response:
        # a writer swapped in a new version and still holds it: rare, and over in a moment
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    app.state.store = store
    from sawubona.web.work import install as install_work  # the worklist pages and API

    install_work(app, store_path, render, lock)
    return app


#: where :func:`app_from_environment` finds the store (and ``SAWUBONA_TOKEN`` the token)
STORE_ENV = "SAWUBONA_SERVE_STORE"


def app_from_environment() -> FastAPI:
    """``create_app`` over ``$SAWUBONA_SERVE_STORE``, with ``$SAWUBONA_TOKEN`` if set.

    For several server processes: ``uvicorn.run("sawubona.web.app:app_from_environment",
    factory=True, workers=N)`` imports the app in each worker, so it cannot be handed an
    object. Each worker opens the file read-only and reopens it after a writer's swap on
    its own (DuckDB allows many reading processes). The supervisor, not the worker,
    writes the ``<store>.serving`` marker: one worker stopping must not remove it while
    the others still serve."""
    store = os.environ.get(STORE_ENV)
    if not store:
        raise RuntimeError(f"set {STORE_ENV} to the store to serve")
    return create_app(store, token=os.environ.get("SAWUBONA_TOKEN") or None, mark_serving=False)
