"""The web page at `/` and its static assets under `/static/`.

The page is hand-written HTML, CSS and JavaScript shipped inside the package, so it works offline
and needs no build step. A strict Content-Security-Policy keeps every request on the app's own
origin: no CDN, font or analytics call can slip in later unnoticed.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from batchscribe.auth import resolve_mode
from batchscribe.http.deps import SettingsDep
from batchscribe.pipeline.formats import ACCEPTED_SENTENCE, html_accept_attribute

STATIC_DIR = Path(__file__).resolve().parents[2] / "web" / "static"

# 'self' only; blob: lets the page play back a recording it made itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is tiny; always revalidate so a deploy is seen at once.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def _page_template() -> str:
    """The page with the accepted formats (from `pipeline/formats.py`) written in."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    page = page.replace("__ACCEPTED_FORMATS__", html.escape(ACCEPTED_SENTENCE))
    return page.replace("__ACCEPT__", html.escape(html_accept_attribute()))


def _format_megabytes(value: float) -> str:
    """`100.0` -> `100`, `2.5` -> `2.5`: the limit as a person would write it."""
    return f"{value:g}"


@router.get("/", response_class=HTMLResponse)
async def index(settings: SettingsDep) -> HTMLResponse:
    """Serve the single page that uploads or records audio and shows both transcripts.

    The upload limit is written into the page so it can refuse an oversized file before
    sending it, with the same number the server enforces.
    """
    limit = _format_megabytes(settings.max_upload_mb)
    page = _page_template().replace("__MAX_UPLOAD_MB__", limit)
    # The page asks for an API key in api_key mode (and keeps it in sessionStorage).
    page = page.replace("__AUTH_MODE__", str(resolve_mode(settings)))
    return HTMLResponse(page, headers=_PAGE_HEADERS)


def mount_web(app: FastAPI) -> None:
    """Add the page route and the `/static` assets to `app` (call once in the app factory)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
