"""The web app (optional extra ``web``): ``create_app`` and ``serve``."""

from __future__ import annotations

import ipaddress
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
    store: str | Path, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None
) -> None:
    """Serve the web app until interrupted (refuses non-local binds without a token)."""
    check_bind(host, token)
    _require_web()
    import uvicorn

    from sawubona.web.app import create_app

    if not Path(store).exists():
        raise SawubonaError(f"no store at {store}; load data first with `sawubona ingest`")
    uvicorn.run(
        create_app(store, token=token), host=host, port=port, log_level="warning", access_log=False
    )
