"""sitemap.xml and feed.xml: well-formed, stable, absolute URLs only when the base URL has a
host."""

from __future__ import annotations

import random
import uuid
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from theme_stand_ins import FrontMatter, make_config

from circuitpress.config import Author
from circuitpress.render import feeds
from circuitpress.render.feeds import feed_xml, sitemap_xml

ATOM = "{http://www.w3.org/2005/Atom}"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@pytest.fixture(autouse=True)
def no_epoch(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def entries():
    return [
        (
            "old",
            FrontMatter(title="Old & gold", published=date(2020, 3, 10)),
            "<p>Old <em>summary</em></p>",
        ),
        ("new", FrontMatter(title="New", published=date(2021, 5, 1), updated=date(2021, 6, 2)), ""),
        ("undated", FrontMatter(title="Undated", published=None, authors=()), ""),
    ]


def test_sitemap_absolute_sorted_and_unique(tmp_path):
    config = make_config(tmp_path, base_url="https://example.org/circuits")
    root = ET.fromstring(sitemap_xml(config, ["zoom-in/", "", "units/m/conv1/3/", "zoom-in/"]))
    locs = [e.text for e in root.iter(f"{SM}loc")]
    assert locs == [
        "https://example.org/circuits/",
        "https://example.org/circuits/units/m/conv1/3/",
        "https://example.org/circuits/zoom-in/",
    ]


def test_sitemap_with_a_path_base_lists_root_relative_paths(tmp_path):
    config = make_config(tmp_path, base_url="/project/")
    root = ET.fromstring(sitemap_xml(config, ["", "a/"]))
    assert [e.text for e in root.iter(f"{SM}loc")] == ["/project/", "/project/a/"]


def test_feed_is_atom_newest_first(tmp_path):
    config = make_config(
        tmp_path, base_url="https://example.org/circuits/", authors=(Author("Editor"),)
    )
    feed = ET.fromstring(feed_xml(config, entries()))
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}title") == "Circuits Thread"
    assert feed.findtext(f"{ATOM}id") == "https://example.org/circuits/"
    assert feed.findtext(f"{ATOM}updated") == "2021-06-02T00:00:00Z"  # the newest date, not now
    assert feed.find(f"{ATOM}author/{ATOM}name").text == "Editor"
    self_link = [
        link.get("href") for link in feed.findall(f"{ATOM}link") if link.get("rel") == "self"
    ]
    assert self_link == ["https://example.org/circuits/feed.xml"]
    items = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in items] == ["New", "Old & gold", "Undated"]
    new, old, undated = items
    assert new.findtext(f"{ATOM}id") == "https://example.org/circuits/new/"
    assert new.findtext(f"{ATOM}updated") == "2021-06-02T00:00:00Z"
    assert new.findtext(f"{ATOM}published") == "2021-05-01T00:00:00Z"
    assert old.findtext(f"{ATOM}summary") == "<p>Old <em>summary</em></p>"
    assert old.find(f"{ATOM}summary").get("type") == "html"
    assert new.findtext(f"{ATOM}summary").startswith("By studying")  # description when no summary
    assert [a.text for a in old.iter(f"{ATOM}name")] == [
        "Chris Olah",
        "Nick Cammarata",
        "Ludwig Schubert",
    ]
    assert undated.findtext(f"{ATOM}updated") == "2021-06-02T00:00:00Z"
    assert undated.find(f"{ATOM}author") is None  # the feed-level author covers it


def test_feed_ids_are_stable_without_a_host(tmp_path):
    config = make_config(tmp_path, base_url="/project/")
    first, second = feed_xml(config, entries()), feed_xml(config, list(reversed(entries())))
    assert first == second
    ids = [e.text for e in ET.fromstring(first).iter(f"{ATOM}id")]
    assert len(set(ids)) == 4 and all(i.startswith("urn:uuid:") for i in ids)
    links = [link.get("href") for link in ET.fromstring(first).iter(f"{ATOM}link")]
    assert "/project/feed.xml" in links and "/project/new/" in links


def test_source_date_epoch_sets_updated(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    feed = ET.fromstring(feed_xml(make_config(tmp_path), entries()))
    assert feed.findtext(f"{ATOM}updated") == "2023-11-14T22:13:20Z"


def test_empty_feed_is_valid_and_deterministic(tmp_path):
    feed = ET.fromstring(feed_xml(make_config(tmp_path), []))
    assert feed.findtext(f"{ATOM}updated") == "1970-01-01T00:00:00Z"
    assert feed.findall(f"{ATOM}entry") == []


def test_escape_is_saxutils_escape() -> None:
    import random
    from xml.sax import saxutils

    from circuitpress.render.feeds import escape

    rng = random.Random(1)
    for _ in range(2000):
        text = "".join(rng.choice("&<>\"'a ;#x") for _ in range(rng.randint(0, 10)))
        assert escape(text) == saxutils.escape(text)
        assert escape(text, {'"': "&quot;"}) == saxutils.escape(text, {'"': "&quot;"})


def test_feed_ids_are_uuid5s() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        name = "".join(rng.choice("aZ9/:ü é#-") for _ in range(rng.randint(0, 40)))
        assert feeds._uuid5(name) == str(uuid.uuid5(uuid.NAMESPACE_URL, name))


@pytest.mark.parametrize("base_url", ["https://e.org/s/", "/", "/sub"])
def test_feed_urls_are_quoted_as_before(tmp_path: Path, base_url: str) -> None:
    config = make_config(tmp_path / "site", base_url=base_url)
    links = feeds._Links(config)
    host = "https://e.org" if base_url.startswith("https") else ""
    for path in ("", "a/b/", "/a", "über/", "a b/#?\n/", "x%20/", "~u_-./", "a+b/"):
        expected = host + config.base_path + quote(path.lstrip("/"), safe="/")
        assert links.url(path) == feeds.site_url(config, path) == expected
