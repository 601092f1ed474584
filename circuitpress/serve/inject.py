"""The live-reload script and the build-error overlay, injected only into preview HTML.

The published site never contains any of this: the build knows nothing of it, and the server
adds it to HTML responses on the way out.

Protocol (server-sent events on EVENTS_PATH):
- `hello` on connect (with `progress`, see below), `reload` after a good build: data
  `{"generation": G}`; the page
  reloads when G differs from the generation it was served with (so a rebuild that finished
  between loading the page and connecting is not missed, and a restarted server reloads it).
- `builderror`: data `{"message": "file:line: what (hint)"}`; the page shows the overlay and
  keeps the last good content. A page loaded while the site is broken gets the overlay inline.
- `progress`: data `{"text": "analyses 3/30, …"}` or `{"text": null}`: while figures are
  computed in the background, a small status box says how far; the page reloads (a `reload`
  event) each time finished figures replace their placeholders.
"""

from __future__ import annotations

import html
import json
import re

EVENTS_PATH = "/__circuitpress/events"
OVERLAY_ID = "__circuitpress-overlay"
STATUS_ID = "__circuitpress-status"

_OVERLAY_STYLE = (
    "position:fixed;left:0;right:0;top:0;z-index:2147483647;margin:0;padding:14px 44px 14px 18px;"
    "background:#b00020;color:#fff;font:14px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace;"
    "white-space:pre-wrap;box-shadow:0 2px 8px rgba(0,0,0,.35)"
)

_STATUS_STYLE = (
    "position:fixed;right:12px;bottom:12px;z-index:2147483646;max-width:min(92vw,420px);"
    "margin:0;padding:8px 12px;border-radius:6px;background:#1d3b5c;color:#fff;"
    "font:13px/1.4 system-ui,sans-serif;box-shadow:0 2px 8px rgba(0,0,0,.3)"
)

_SCRIPT = (
    """<script>(function () {
  var generation = %(generation)s, overlayId = %(overlay_id)s, style = %(style)s;
  var statusId = %(status_id)s, statusStyle = %(status_style)s;
  function status(text) {
    var box = document.getElementById(statusId);
    if (text === null) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement("div");
      box.id = statusId; box.setAttribute("role", "status"); box.style.cssText = statusStyle;
      document.body.appendChild(box);
    }
    box.textContent = "Computing figures: " + text;
  }
  function overlay(message) {
    var box = document.getElementById(overlayId);
    if (message === null) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement("div");
      box.id = overlayId; box.setAttribute("role", "alert"); box.style.cssText = style;
      document.body.appendChild(box);
    }
    box.textContent = "circuitpress: the site failed to build\\n" + message;
  }
  function onState(event) {
    var data = JSON.parse(event.data);
    if (data.generation !== generation) { location.reload(); return; }
    overlay(data.message);
    if ("progress" in data) status(data.progress);
  }
  if (!window.EventSource) return;
  var source = new EventSource(%(events)s);
  source.addEventListener("hello", onState);
  source.addEventListener("reload", onState);
  source.addEventListener("progress", function (event) {
    status(JSON.parse(event.data).text); });
"""
    '  source.addEventListener("builderror", function (event) {'
    " overlay(JSON.parse(event.data).message); });\n"
    "})();</script>"
)

_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


def overlay_html(message: str) -> str:
    """The overlay as static HTML, for pages served while the site is broken (works without JS)."""
    return (
        f'<div id="{OVERLAY_ID}" role="alert" style="{_OVERLAY_STYLE}">'
        f"circuitpress: the site failed to build\n{html.escape(message)}</div>"
    )


def status_html(text: str) -> str:
    """The background computation's status box as static HTML (the script keeps it current)."""
    return (
        f'<div id="{STATUS_ID}" role="status" style="{_STATUS_STYLE}">'
        f"Computing figures: {html.escape(text)}</div>"
    )


def snippet(generation: str, error: str | None, progress: str | None = None) -> str:
    """What goes before </body>: the overlay when broken, the status box while figures are
    computed, then the reload script."""
    script = _SCRIPT % {
        "generation": _js(generation),
        "overlay_id": _js(OVERLAY_ID),
        "style": _js(_OVERLAY_STYLE),
        "status_id": _js(STATUS_ID),
        "status_style": _js(_STATUS_STYLE),
        "events": _js(EVENTS_PATH),
    }
    return (
        (overlay_html(error) if error else "")
        + (status_html(progress) if progress else "")
        + script
    )


def inject(page: bytes, generation: str, error: str | None, progress: str | None = None) -> bytes:
    """`page` with the snippet before its last </body> (appended when there is none)."""
    extra = snippet(generation, error, progress).encode("utf-8")
    matches = list(_BODY_END.finditer(page))
    if not matches:
        return page + extra
    at = matches[-1].start()
    return page[:at] + extra + page[at:]


def error_page(generation: str, error: str) -> bytes:
    """The whole page when no build has ever succeeded: just the overlay and the script."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Build error · circuitpress</title></head><body>"
        + snippet(generation, error)
        + "</body></html>"
    ).encode("utf-8")


def sse(event: str, data: dict[str, object]) -> bytes:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode("utf-8")


def _js(value: str) -> str:
    # json.dumps escapes quotes and backslashes; '</' must not end the <script> early.
    return json.dumps(value).replace("</", "<\\/")
