"""Live reload in Debian's Chromium: an edit shows up in the open page without a manual reload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from circuitpress.serve.inject import OVERLAY_ID

from ..conftest import chromium
from .conftest import article

pytestmark = pytest.mark.browser


@pytest.fixture
def page() -> Iterator[object]:
    with chromium() as browser:
        yield browser.new_page()


def test_edit_reloads_the_open_page(make_site, running, page):
    site = make_site(base_url="/sub/")
    server = running(site)
    page.goto(server.url + "hello/")
    page.wait_for_function("document.body.innerText.includes('Hello, reader.')")
    page.evaluate("window.__marker = 'still the first load'")
    (site / "content" / "hello.md").write_text(
        article("Hello", "A sentence written after the page opened.")
    )
    page.wait_for_function(
        "document.body.innerText.includes('A sentence written after the page opened.')",
        timeout=15000,
    )
    assert page.evaluate("window.__marker === undefined")  # it really was reloaded by the server


def test_error_overlay_then_recovery(make_site, running, page):
    site = make_site()
    server = running(site)
    page.goto(server.url + "hello/")
    page.wait_for_function("document.body.innerText.includes('Hello, reader.')")
    (site / "content" / "hello.md").write_text("---\ntitle: [unclosed\n---\nBroken.\n")
    overlay = page.locator(f"#{OVERLAY_ID}")
    overlay.wait_for(state="visible", timeout=15000)
    assert "content/hello.md:" in overlay.inner_text()
    assert "Hello, reader." in page.inner_text("body")  # the last good page stays underneath
    # A page opened while the site is broken shows the overlay too.
    other = page.context.browser.new_page()
    other.goto(server.url + "hello/")
    assert "content/hello.md:" in other.locator(f"#{OVERLAY_ID}").inner_text()
    (site / "content" / "hello.md").write_text(article("Hello", "Repaired text."))
    for p in (page, other):
        p.wait_for_function("document.body.innerText.includes('Repaired text.')", timeout=15000)
        assert p.locator(f"#{OVERLAY_ID}").count() == 0
