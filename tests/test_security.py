"""Security: text from a user's files never becomes live markup, and no link runs script.

Everything an author did not write as HTML (circuitpress.toml, front matter, .bib fields,
directive options, SVG labels and data attributes, the preview server's error overlay) carries
a payload here; the output is parsed and must contain no element, attribute or URL that a
browser would run. The article's own Markdown may contain HTML on purpose and is not tested.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli
from circuitpress.config import BuildSettings, SiteConfig, SiteSettings
from circuitpress.markup.bibliography import parse_bib, reference_html
from circuitpress.render import svg
from circuitpress.render.feeds import feed_xml
from circuitpress.serve.inject import error_page, overlay_html, snippet, sse
from circuitpress.urls import is_safe_link

PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
PACKAGE = Path(__file__).resolve().parents[1] / "circuitpress"


class Live(HTMLParser):
    """Every piece of markup a browser would execute: inline scripts, handlers, script URLs."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and not a.get("src"):
            self.found.append("inline <script>")
        if tag == "img" and a.get("src") == "x":
            self.found.append("planted <img>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if (
                name in ("href", "src", "action", "formaction", "xlink:href")
                and value
                and not is_safe_link(value)
            ):
                self.found.append(f"<{tag} {name}={value!r}>")


def live(text: str) -> list[str]:
    return Live(text).found


def test_the_scanner_sees_live_markup():
    # A scanner that finds nothing proves nothing: check that it catches each kind.
    assert live(PAYLOAD) == ["inline <script>", "planted <img>", "<img onerror>"]
    assert live('<a href=" java\tscript:alert(1)">x</a>') == ["<a href=' java\\tscript:alert(1)'>"]
    assert live('<p title="&lt;script&gt;">&lt;img src=x onerror=1&gt;</p>') == []


def toml(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a TOML basic string


def yaml(value: str) -> str:
    return json.dumps(value)  # and a YAML scalar


def payload_site(root: Path) -> Path:
    """A prose site (no models) with the payload in every field a user controls."""
    files = {
        "circuitpress.toml": (
            "[site]\n"
            f"title = {toml('T' + PAYLOAD)}\n"
            f"description = {toml('D' + PAYLOAD)}\n"
            'base_url = "https://example.org/sub/"\n'
            f"license = {toml('L' + PAYLOAD)}\n"
            f"repository = {toml('https://example.org/?q=' + PAYLOAD)}\n"
            f"authors = [{{name = {toml('N' + PAYLOAD)}, url = {toml('https://a.org/' + PAYLOAD)},"
            f" affiliation = {toml('A' + PAYLOAD)}}}]\n"
        ),
        "references.bib": (
            "@article{k1,\n"
            f"  author = {{Evil {PAYLOAD} and Bob Smith}},\n"
            f"  title = {{Title {PAYLOAD}}},\n"
            f"  journal = {{J{PAYLOAD}}},\n"
            f"  year = {{2020{PAYLOAD}}},\n"
            "  url = {javascript:alert(1)}\n}\n"
            "@misc{k2,\n  title = {T2},\n  url = {JaVaScRiPt:alert(1)},\n"
            "  doi = {javascript:alert(1)}\n}\n"
            f"@misc{{k3,\n  title = {{T3}},\n  url = {{https://x.org/{PAYLOAD}}}\n}}\n"
        ),
        "static/a.png": "",
        "content/a.md": (
            "---\n"
            f"title: {yaml('T' + PAYLOAD)}\n"
            f"description: {yaml('D' + PAYLOAD)}\n"
            "authors:\n"
            f"  - name: {yaml('N' + PAYLOAD)}\n"
            f"    url: {yaml('https://a.org/' + PAYLOAD)}\n"
            f"    affiliation: {yaml('A' + PAYLOAD)}\n"
            f"    affiliation_url: {yaml('https://b.org/' + PAYLOAD)}\n"
            # A DOI has no spaces (the front matter refuses one), so its payload does without.
            f"doi: {yaml('10.1234/' + PAYLOAD.replace(' ', '/'))}\n"
            f"series: {yaml('S' + PAYLOAD)}\n"
            f"license: {yaml('L' + PAYLOAD)}\n"
            f"image: {yaml('a.png?' + PAYLOAD)}\n"
            f"tags: [{yaml(PAYLOAD)}]\n"
            f"updates:\n  - {{date: 2024-02-01, text: {yaml('U' + PAYLOAD)}}}\n"
            "published: 2024-01-01\n"
            "---\n\n"
            "Cite {cite}`k1,k2,k3`.\n\n"
            ":::{figure} a.png\n"
            ":name: fig-a\n"
            f":alt: {PAYLOAD}\n"
            "Caption.\n"
            ":::\n\n"
            "See {numref}`Plate %s <fig-a>`.\n"
        ),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_no_user_text_becomes_markup_in_a_built_site(tmp_path):
    site = payload_site(tmp_path / "site")
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet"])
    assert result.exit_code == 0, result.output
    out = site / "_site"
    pages = sorted(out.rglob("*.html"))
    assert {p.relative_to(out).as_posix() for p in pages} >= {
        "index.html",
        "a/index.html",
        "404.html",
    }
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert live(text) == [], page
    article = (out / "a" / "index.html").read_text(encoding="utf-8")
    # The payload did arrive (escaped), so the test exercised the fields it names.
    assert article.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 12
    assert 'href="javascript' not in article.lower() and "JaVaScRiPt" not in article
    for name in ("feed.xml", "sitemap.xml"):
        text = (out / name).read_text(encoding="utf-8")
        ET.fromstring(text)  # well-formed: nothing broke out of an element or attribute
        assert "<script" not in text and "<img" not in text


BAD_LINKS = [
    (
        "author-url",
        "content/a.md",
        "---\ntitle: T\nauthors:\n  - name: A\n    url: javascript:alert(1)\n---\n",
        "content/a.md:5:",  # the line of the url itself
    ),
    (
        "affiliation-url",
        "content/a.md",
        "---\ntitle: T\nauthors:\n"
        "  - {name: A, affiliation: L, affiliation_url: ' JaVaScript:x'}\n---\n",
        "content/a.md:4:",
    ),
    (
        "image",
        "content/a.md",
        "---\ntitle: T\nimage: 'data:image/svg+xml,<svg onload=alert(1)>'\n---\n",
        "content/a.md:3:",
    ),
    (
        "repository",
        "circuitpress.toml",
        '[site]\ntitle = "S"\nrepository = "javascript:alert(1)"\n',
        "circuitpress.toml:3:",
    ),
    (
        "site-author-url",
        "circuitpress.toml",
        '[site]\ntitle = "S"\nauthors = [{name = "A", url = "vbscript:x"}]\n',
        "circuitpress.toml:3:",
    ),
]


@pytest.mark.parametrize(
    "rel, text, where", [c[1:] for c in BAD_LINKS], ids=[c[0] for c in BAD_LINKS]
)
def test_script_urls_are_refused_with_one_line(tmp_path, rel, text, where):
    files = {
        "circuitpress.toml": '[site]\ntitle = "S"\n',
        "content/a.md": "---\ntitle: T\n---\nText.\n",
        rel: text,
    }
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(tmp_path), "--quiet"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith(where), result.output
    assert "not a web link" in lines[0]


@pytest.mark.parametrize(
    "url, safe",
    [
        ("https://distill.pub", True),
        ("http://x.org/a?b", True),
        ("mailto:a@b.org", True),
        ("/units/m/conv2/7/", True),
        ("img/a.png", True),
        ("#ref-1", True),
        ("", True),
        ("javascript:alert(1)", False),
        (" JavaScript:alert(1)", False),
        ("java\tscript:x", False),
        ("\x01javascript:x", False),
        ("data:text/html,<script>", False),
        ("vbscript:x", False),
        ("file:///etc/passwd", False),
    ],
)
def test_is_safe_link(url, safe):
    assert is_safe_link(url) is safe


def test_bibtex_fields_are_escaped_and_only_web_links_are_linked():
    bib = parse_bib(
        "@article{a,\n"
        f"  author = {{Bob {PAYLOAD}}},\n  title = {{T {PAYLOAD}}},\n  journal = {{{PAYLOAD}}},\n"
        f"  year = {{{PAYLOAD}}},\n  url = {{javascript:alert(1)}}\n}}\n"
        "@misc{b,\n  title = {B},\n  doi = {javascript:alert(1)}\n}\n"
        f"@misc{{c,\n  title = {{C}},\n  url = {{https://ok.org/{PAYLOAD}}}\n}}\n",
        "references.bib",
    )
    a, b, c = (reference_html(bib[k]) for k in "abc")
    assert live(a + b + c) == []
    assert "<a" not in a  # a javascript: URL is not linked at all
    assert 'href="https://doi.org/javascript:alert(1)"' in b  # a DOI always goes to doi.org
    assert 'href="https://ok.org/&lt;script&gt;' in c


def test_svg_labels_ids_links_and_data_are_escaped():
    nodes = [
        svg.Node(
            id=PAYLOAD,
            label=PAYLOAD,
            level=0,
            href="/u/" + PAYLOAD,
            image="/i.png?" + PAYLOAD,
            data={"name": PAYLOAD},
        ),
        svg.Node(id="b", label="b", level=1),
    ]
    edges = [svg.Edge(src="b", dst=PAYLOAD, weight=-1.0, data={"kernel": PAYLOAD}, title=PAYLOAD)]
    texts = [
        svg.circuit_svg(nodes, edges, label=PAYLOAD),
        svg.line_plot_svg(
            [0, 1],
            [svg.Series(PAYLOAD, [1, 2]), svg.Series("b", [2, 1])],
            x_label=PAYLOAD,
            y_label=PAYLOAD,
            x_ticks=[(0, PAYLOAD)],
            label=PAYLOAD,
        ),
        svg.heatmap_svg(
            [[1.0, 2.0]],
            x_labels=[PAYLOAD, "x"],
            y_labels=[PAYLOAD],
            x_title=PAYLOAD,
            y_title=PAYLOAD,
        ),
        svg.kernel_svg([[1.0]], 1.0, label=PAYLOAD),
    ]
    for text in texts:
        assert live(text) == []
        ET.fromstring(text)  # well-formed SVG: no attribute was broken out of


def test_svg_data_attribute_names_cannot_carry_markup():
    with pytest.raises(ValueError, match="data attribute name"):
        svg.circuit_svg(
            [svg.Node(id="a", label="a", level=0, data={'x onload="alert(1)"': "1"})], []
        )


def test_feed_attributes_are_quoted(tmp_path):
    config = SiteConfig(
        root=tmp_path,
        path=tmp_path / "circuitpress.toml",
        site=SiteSettings(title=PAYLOAD, language='en" onload="x', base_url='https://e.org/"x/'),
        build=BuildSettings(),
    )
    feed = ET.fromstring(feed_xml(config, []))
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == 'en" onload="x'
    assert feed.find("{http://www.w3.org/2005/Atom}title").text == PAYLOAD  # type: ignore[union-attr]


def test_serve_error_overlay_and_events_never_run_the_message():
    message = "content/a.md:3: bad </script><script>alert(1)</script>" + PAYLOAD
    pages = [
        (overlay_html(message), 0),
        (snippet("g1", message), 1),
        (error_page("g1", message).decode(), 1),
    ]
    for page, reload_scripts in pages:
        # The reload script itself is the only inline script, and the message is not in it.
        scripts = re.findall(r"<script>.*?</script>", page, flags=re.S)
        assert len(scripts) == reload_scripts
        assert all("alert(1)" not in s for s in scripts)
        assert [f for f in live(page) if f != "inline <script>"] == []
    event = sse("builderror", {"message": message + "\n\ndata: injected"}).decode()
    assert event.count("\n\n") == 1 and event.endswith(
        "\n\n"
    )  # one event: a newline cannot split it
    assert json.loads(event.split("data: ", 1)[1])["message"].startswith("content/a.md:3:")


def test_nothing_in_the_package_unpickles():
    # Model files and cache entries are data: pickle would run code from them.
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"pickle\.loads?\(|allow_pickle\s*=\s*True|torch\.load\(.*", text):
            if match.group(0).startswith("torch.load") and "weights_only=True" in match.group(0):
                continue
            offenders.append(f"{path.relative_to(PACKAGE)}: {match.group(0)}")
    assert offenders == []


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_every_control_character_is_found_in_ascii_and_other_text(where: str) -> None:
    """control_character's quick check of ASCII text finds exactly what the full search does,
    at the same place, for every character of the first two Unicode blocks and the two
    non-characters."""
    import re

    from circuitpress.errors import control_character

    full = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
    for code in [*range(0x180), 0xFFFE, 0xFFFF]:
        for text in ("plain words\n\tand tabs", "curly ’quotes’ and é"):
            i = {"start": 0, "middle": len(text) // 2, "end": len(text)}[where]
            probe = text[:i] + chr(code) + text[i:]
            found, expected = control_character(probe), full.search(probe)
            assert (found and found.start()) == (expected and expected.start()), hex(code)
