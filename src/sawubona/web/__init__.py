"""The web app (optional extra ``web``): ``create_app`` and ``serve``."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from pathlib import Path

from sawubona.errors import SawubonaError

LOCAL_HOSTS = ("localhost",)


def is_local(host: str) -> bool:
    """True for loopback addresses (127.0.0.0/8, ::1, localhost)."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    if not is_local(host) and not token:
        raise SawubonaError(
            f"refusing to serve on {host} without a token: anyone who can reach it would "
            "see customer data; pass --token SECRET (or bind 127.0.0.1)"
        )


def _require_web() -> None:
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise SawubonaError('the web app needs its extra: pip install "sawubona[web]"') from None


def serve(
    store: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    workers: int = 1,
) -> None:
    """Serve the web app until interrupted (refuses non-local binds without a token).

    ``workers`` > 1 runs that many server processes on the same port (uvicorn's
    supervisor); each imports the app through
    :func:`sawubona.web.app.app_from_environment` and opens the store read-only (DuckDB
    lets several processes read one file). Python runs one request's own work at a
    time per process, so on a machine with more than one core a second process is
    what lets portraits use them all."""
    check_bind(host, token)
    _require_web()
    import uvicorn

    from sawubona.web.app import STORE_ENV, create_app

    if not Path(store).exists():
        raise SawubonaError(f"no store at {store}; load data first with `sawubona ingest`")
    if workers < 1:
        raise SawubonaError(f"--workers must be at least 1, not {workers}")
    if workers == 1:
        uvicorn.run(
            create_app(store, token=token),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )
        return
    from sawubona.backends.duckdb import serving_marker
    from sawubona.web.app import unmark

    # the worker processes inherit the environment: that is how they learn the store and token
    os.environ[STORE_ENV] = str(Path(store).resolve())
    if token:
        os.environ["SAWUBONA_TOKEN"] = token
    # this process outlives every worker: it tells writers the store is served
    marker = serving_marker(Path(store).resolve())
    with contextlib.suppress(OSError):
        marker.write_text(str(os.getpid()))
    try:
        uvicorn.run(
            "sawubona.web.app:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )
    finally:
        unmark(marker)
