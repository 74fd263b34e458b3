"""The worklist in the web app: list with filters, one item with assign / done / dismiss,
the outer loop and "did it help?", and the same as JSON under ``/api/work``.

Writes go to the worklist file next to the store (``sawubona.work``), never to the
read-only store, so they work while ``analyze`` runs. The app's middleware asks
for the token on every request, POSTs included, when one is configured; a POST
whose ``Origin`` is another site is refused (a page elsewhere cannot make a
browser write here). Every write records its author: the form's *your name*
field (remembered in a cookie) or the ``author`` of the JSON body.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from sawubona.work import DONE_KINDS, KINDS, STATES, URGENCIES, WorkError, Worklist, worklist_path
from sawubona.work.measure import impact, kinds_summary, outer_loop

PAGE = 50


class AssignBody(BaseModel):
    owner: str = Field(description="Who will do it.")
    team: str | None = Field(None, description="Their team.")
    author: str = Field(description="Who makes the change.")


class DoneBody(BaseModel):
    note: str = Field(description="What was actually done.")
    kind: str = Field("other", description=f"One of {', '.join(DONE_KINDS)}.")
    link: str | None = Field(None, description="touchpoint:ID or action:ID that shows it.")
    author: str = Field(description="Who makes the change.")


class DismissBody(BaseModel):
    reason: str = Field(description="Why it will not be done.")
    author: str = Field(description="Who makes the change.")


def install(
    app: FastAPI,
    store_path: str | Path,
    render: Callable[..., HTMLResponse],
    lock: threading.Lock,
) -> None:
    """Add the worklist pages and API to ``app``."""
    path = worklist_path(store_path)
    router = APIRouter()

    def wl() -> Worklist:
        return Worklist(path)

    def same_origin(request: Request) -> bool:
        """A browser's write must come from this site's own pages (Fetch Metadata, then Origin).

        With ``Referrer-Policy: no-referrer`` browsers send ``Origin: null`` on form posts,
        so ``Sec-Fetch-Site`` decides where a browser sends it; clients that are not
        browsers (curl, scripts) send neither and are let through (the token guards them).
        """
        site = request.headers.get("sec-fetch-site")
        if site is not None:
            return site in ("same-origin", "none")
        origin = request.headers.get("origin")
        if origin is None:
            return True
        return origin != "null" and urlparse(origin).netloc == request.headers.get("host", "")

    def filters(request: Request) -> dict[str, str]:
        keys = ("kind", "team", "owner", "urgency", "state", "customer_id")
        return {k: v for k in keys if (v := request.query_params.get(k, "").strip())}

    def listing(f: dict[str, str], page: int, size: int) -> tuple[list[dict[str, Any]], int]:
        state = (f["state"],) if f.get("state") else ("open", "assigned")
        args = {k: f.get(k) for k in ("kind", "team", "owner", "urgency", "customer_id")}
        with wl() as w:
            rows = w.items(state=state, limit=size, offset=(page - 1) * size, **args)  # type: ignore[arg-type]
            total = w.count(state=state, **args)  # type: ignore[arg-type]
        return rows, total

    # -- pages ------------------------------------------------------------------------------

    @router.get("/work", response_class=HTMLResponse, include_in_schema=False)
    def work_page(request: Request, page: int = 1) -> HTMLResponse:
        f = filters(request)
        try:
            rows, total = listing(f, max(page, 1), PAGE)
            with wl() as w:
                facets = w.facets()
                summary = kinds_summary(w)
        except WorkError as exc:
            return render(request, "error.html", 400, status="Bad request", message=str(exc))
        pages = max(1, -(-total // PAGE))
        return render(
            request,
            "work.html",
            rows=rows,
            total=total,
            filters=f,
            facets=facets,
            summary=summary,
            states=STATES,
            page=max(page, 1),
            pages=pages,
            prev_q=urlencode({**f, "page": page - 1}),
            next_q=urlencode({**f, "page": page + 1}),
        )

    @router.get("/work/causes", response_class=HTMLResponse, include_in_schema=False)
    def causes_page(request: Request, horizon: float = 90.0) -> HTMLResponse:
        with wl() as w:
            rows = outer_loop(w)
            with lock:
                helped = impact(app.state.store, w, horizon_days=horizon)
        return render(request, "work_causes.html", rows=rows, helped=helped)

    @router.get("/work/{item_id}", response_class=HTMLResponse, include_in_schema=False)
    def item_page(request: Request, item_id: str) -> HTMLResponse:
        try:
            with wl() as w:
                item = w.get(item_id)
                events = w.events(item_id)
        except WorkError as exc:
            return render(request, "error.html", 404, status="Not found", message=str(exc))
        return render(
            request,
            "work_item.html",
            item=item,
            events=events,
            done_kinds=DONE_KINDS,
            author=request.cookies.get("sawubona_author", ""),
            error=request.query_params.get("error", ""),
        )

    def after_write(
        request: Request, item_id: str, action: Callable[[Worklist], Any], author: str
    ) -> Response:
        if not same_origin(request):
            return JSONResponse({"error": "a write must come from this site"}, status_code=403)
        try:
            with wl() as w:
                action(w)
        except WorkError as exc:
            target = f"/work/{item_id}?{urlencode({'error': str(exc)})}"
            return RedirectResponse(target, status_code=303)
        response = RedirectResponse(f"/work/{item_id}", status_code=303)
        response.set_cookie("sawubona_author", author.strip(), httponly=True, samesite="strict")
        return response

    async def form(request: Request) -> dict[str, str]:
        """An HTML form's fields (``application/x-www-form-urlencoded``, parsed here)."""
        body = (await request.body()).decode("utf-8", errors="replace")
        return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}

    @router.post("/work/{item_id}/assign", include_in_schema=False)
    async def assign_form(request: Request, item_id: str) -> Response:
        f = await form(request)
        author = f.get("author", "")
        return after_write(
            request,
            item_id,
            lambda w: w.assign(item_id, f.get("owner", ""), team=f.get("team") or None, who=author),
            author,
        )

    @router.post("/work/{item_id}/done", include_in_schema=False)
    async def done_form(request: Request, item_id: str) -> Response:
        f = await form(request)
        author = f.get("author", "")
        return after_write(
            request,
            item_id,
            lambda w: w.done(
                item_id,
                f.get("note", ""),
                who=author,
                done_kind=f.get("kind") or "other",
                link=f.get("link") or None,
            ),
            author,
        )

    @router.post("/work/{item_id}/dismiss", include_in_schema=False)
    async def dismiss_form(request: Request, item_id: str) -> Response:
        f = await form(request)
        author = f.get("author", "")
        return after_write(
            request, item_id, lambda w: w.dismiss(item_id, f.get("reason", ""), who=author), author
        )

    # -- JSON API ---------------------------------------------------------------------------

    def api_write(request: Request, action: Callable[[Worklist], dict[str, Any]]) -> Response:
        if not same_origin(request):
            return JSONResponse({"error": "a write must come from this site"}, status_code=403)
        try:
            with wl() as w:
                return JSONResponse(action(w))
        except WorkError as exc:
            code = 404 if "there is no work item" in str(exc) else 409
            return JSONResponse({"error": str(exc)}, status_code=code)

    @router.get("/api/work", tags=["work"])
    def api_work(
        request: Request,
        kind: str | None = Query(None, description=f"One of {', '.join(KINDS)}."),
        team: str | None = None,
        owner: str | None = None,
        urgency: str | None = Query(None, description=f"One of {', '.join(URGENCIES)}."),
        state: str | None = Query(None, description="Default: open and assigned."),
        customer_id: str | None = None,
        page: int = Query(1, ge=1),
        page_size: int = Query(PAGE, ge=1, le=500),
    ) -> Any:
        """Work items to do (held-out items are never listed), most urgent first."""
        f = {
            k: v
            for k, v in dict(
                kind=kind,
                team=team,
                owner=owner,
                urgency=urgency,
                state=state,
                customer_id=customer_id,
            ).items()
            if v
        }
        try:
            rows, total = listing(f, page, page_size)
        except WorkError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return {"total": total, "page": page, "page_size": page_size, "rows": rows}

    @router.get("/api/work/causes", tags=["work"])
    def api_causes() -> list[dict[str, Any]]:
        """The outer loop: per kind and cause, counts, handling speed, recurrence."""
        with wl() as w:
            return outer_loop(w)

    @router.get("/api/work/impact", tags=["work"])
    def api_impact(horizon: float = Query(90.0, gt=0)) -> dict[str, Any]:
        """Did it help? Handled vs unhandled and held-out items over a horizon, with intervals."""
        with wl() as w, lock:
            return impact(app.state.store, w, horizon_days=horizon)

    @router.get("/api/work/{item_id}", tags=["work"])
    def api_item(item_id: str) -> Any:
        """One item and its history (append-only events)."""
        try:
            with wl() as w:
                return {"item": w.get(item_id), "events": w.events(item_id)}
        except WorkError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    @router.post("/api/work/{item_id}/assign", tags=["work"])
    def api_assign(request: Request, item_id: str, body: AssignBody) -> Response:
        """Assign an item to an owner (and team)."""
        return api_write(
            request, lambda w: w.assign(item_id, body.owner, team=body.team, who=body.author)
        )

    @router.post("/api/work/{item_id}/done", tags=["work"])
    def api_done(request: Request, item_id: str, body: DoneBody) -> Response:
        """Mark an item done with what was done, its kind and a link to the evidence."""
        return api_write(
            request,
            lambda w: w.done(
                item_id, body.note, who=body.author, done_kind=body.kind, link=body.link
            ),
        )

    @router.post("/api/work/{item_id}/dismiss", tags=["work"])
    def api_dismiss(request: Request, item_id: str, body: DismissBody) -> Response:
        """Dismiss an item with the reason."""
        return api_write(request, lambda w: w.dismiss(item_id, body.reason, who=body.author))

    app.include_router(router)
