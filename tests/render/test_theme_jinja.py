"""The theme's Jinja environment (render/jinja.py) and page views (render/html.py) give the
bytes of what they replace: markupsafe's escape, Jinja's own code generator and environment,
the strftime and join they stand in for."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import jinja2
import pytest
from markupsafe import Markup, escape
from theme_stand_ins import FrontMatter, RenderedPage, make_config

from circuitpress.config import Affiliation, Author
from circuitpress.render import jinja
from circuitpress.render.html import Theme, View, _institution, _slashed, _with_backrefs


class Html:
    def __html__(self) -> str:
        return "<b>safe</b>"


class Text:
    def __str__(self) -> str:
        return "<i>'text'</i> & \"more\""


class Special(Markup):
    def __html__(self) -> Markup:
        return Markup("<s>special</s>")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "<a href=\"x\">'&'</a>",
        Markup("<p>kept</p>"),
        Special("ignored"),
        0,
        -12,
        True,
        None,
        1.5,
        Html(),
        Text(),
        type("S", (str,), {})("<sub>class</sub>"),
    ],
)
def test_output_writes_the_text_of_escape(value: object) -> None:
    assert jinja.output(value) == str(escape(value))


def test_output_of_an_undefined_fails_as_escape_does() -> None:
    undefined = jinja2.StrictUndefined(name="nope")
    with pytest.raises(jinja2.UndefinedError):
        escape(undefined)
    with pytest.raises(jinja2.UndefinedError):
        jinja.output(undefined)


TEMPLATES = {
    "base.html": "<title>{% block title %}T {{ site }}{% endblock %}</title>\n"
    "{% block body %}{% endblock %}|{{ tail }}\n",
    "child.html": '{% extends "base.html" %}{% block title %}{{ super() }} &lt;{{ a }}'
    "{% endblock %}{% block body %}{% include 'part.html' %}{{ b }}!{{ c }}{% endblock %}",
    "part.html": '{% for x in items %}<li id="{{ x.id }}" value="{{ loop.index }}">{{ x.html }}'
    "</li>{% if not loop.last %},{% endif %}\n{% endfor %}",
    "macros.html": "{% macro card(t, n=2) -%}<b>{{ t }}</b>{{ n }}{%- endmacro %}"
    "{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}in {{ a }}{% endcall %}"
    " {{ card(a, n=b) }}{{ card('<x>') }}",
    "sets.html": "{% set label %}{{ a }}, {{ b }}{% endset %}[{{ label }}]{{ label|length }}"
    "{% set n = namespace(v=a ~ b) %}{{ n.v }}{% filter upper %}{{ a }}x{{ c }}{% endfilter %}",
    "filters.html": "{{ items|map(attribute='id')|join(', ') }}|{{ a|e }}|{{ c|safe }}|"
    "{{ '%s-%s'|format(a, b) }}|{{ a ~ c }}|{{ [a, b]|join('<br>'|safe) }}|{{ n|default(3) }}",
    "consts.html": "{{ 'const <' }}{{ 1 + 2 }}{{ none }}{{ 'x' if a }}"
    "{% raw %}{{ raw }}{% endraw %}",
    "noescape.html": "{% autoescape false %}{{ a }}<{{ c }}>{% endautoescape %}{{ a }}",
    "loops.html": "{% for k, v in pairs %}{{ k }}={{ v }}{% else %}none{% endfor %}"
    "{% for x in items recursive %}{{ loop.depth }}{{ x.id }}{% endfor %}"
    "{% with w = a %}{{ w }}{{ b }}{% endwith %}",
    "whitespace.html": "<ul>\n  {% for x in items %}\n  <li>{{ x.id }}</li>\n  {% endfor %}\n"
    "</ul>\n  {{- a -}}  \n{{ b }}\n",
}
CONTEXT = {
    "site": "S&S",
    "tail": Markup("<hr>"),
    "a": "<A & 'a'>",
    "b": 7,
    "c": Markup("<em>c</em>"),
    "items": [View(id="i<1>", html=Markup("<p>one</p>")), View(id=2, html="<two>")],
    "pairs": [("k", "<v>"), ("j", 0)],
}


def environments(**options: object) -> tuple[jinja2.Environment, jinja2.Environment]:
    kwargs: dict = {
        "loader": jinja2.DictLoader(TEMPLATES),
        "autoescape": True,
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
        **options,
    }
    return jinja2.Environment(**kwargs), jinja.Environment(**kwargs)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("autoescape", [True, False, jinja2.select_autoescape(["html"])])
def test_templates_render_as_with_jinjas_own_environment(name: str, autoescape: object) -> None:
    stock, ours = environments(autoescape=autoescape)
    expected = stock.get_template(name).render(CONTEXT)
    assert ours.get_template(name).render(CONTEXT) == expected
    assert "".join(ours.get_template(name).generate(CONTEXT)) == expected


@pytest.mark.parametrize(
    "source",
    [
        "<p>{{ a }}\n{{ b }}</p><p>{{ c }}\n{{ nope.x }}</p>\n",
        "<p>\n{{ nope.x }}</p>",
        "{% for i in [1] %}\n<li>{{ i }}\n</li>{{ a }}{{ i.nope.x }}\n{% endfor %}",
        "{% set t %}\n{{ a }}\n{{ nope.x }}{% endset %}{{ t }}",
    ],
)
def test_an_error_is_located_at_jinjas_own_line(tmp_path: Path, source: str) -> None:
    """Jinja maps a template's frames to its lines: the joined output keeps that mapping."""
    (tmp_path / "t.html").write_text(source)

    def line(cls: type[jinja2.Environment]) -> int | None:
        env = cls(
            loader=jinja2.FileSystemLoader(str(tmp_path)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        with pytest.raises(jinja2.UndefinedError) as info:
            env.get_template("t.html").render(a=1, b=2, c=3)
        tb, found = info.value.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.endswith("t.html"):
                found = tb.tb_lineno
            tb = tb.tb_next
        return found

    assert line(jinja.Environment) == line(jinja2.Environment) is not None


def test_template_globals_are_a_copy_that_overlays_the_environments() -> None:
    env = jinja.Environment(loader=jinja2.DictLoader({"g.html": "{{ g }} {{ h }}"}))
    env.globals.update(g="env", h="env")
    assert env.get_template("g.html", globals={"h": "own"}).render() == "env own"
    assert env.globals == {**jinja2.Environment().globals, "g": "env", "h": "env"}


def rich_page() -> tuple[FrontMatter, RenderedPage]:
    meta = FrontMatter(
        authors=(
            Author(
                "Chris Olah",
                "https://colah.github.io",
                affiliations=(
                    Affiliation("OpenAI", "https://openai.com", department="Clarity"),
                    Affiliation("Google Brain"),
                ),
                orcid="0000-0002-1825-0097",
                email="c@example.org",
                corresponding=True,
            ),
            Author("The <Circuits> Team"),
            Author("Ludwig Schubert", affiliation="Google", affiliation_url="https://g.co"),
        ),
        updated=date(2021, 2, 3),
        updates=((date(2020, 4, 1), "Fixed <b>a</b> typo"),),
        license="CC-BY 4.0",
        extra={"image": "img/cover.png"},
    )
    return meta, RenderedPage()


def test_the_themes_templates_render_as_with_jinjas_own_environment(tmp_path: Path) -> None:
    theme = Theme(
        make_config(tmp_path / "site", base_url="https://example.org/c/", repository="https://r.io")
    )
    meta, rendered = rich_page()
    nav = {
        "prev": {"title": "A <1>", "url": "a/"},
        "next": {"title": "C", "url": "/c/c/"},
        "index": 2,
        "count": 3,
    }
    pages = [("zoom-in", meta), ("other", FrontMatter(title="O & o", draft=True))]

    def everything() -> list[str]:
        return [
            theme.render_page(meta, rendered, slug="zoom-in", series_nav=nav, draft=True),
            theme.render_page(FrontMatter(), RenderedPage(), slug="b", series_nav=None, draft=0),
            theme.render_index(pages, [("Series <s>", pages), (None, pages[:1])]),
            theme.render_404(),
        ]

    ours = everything()
    stock = jinja2.Environment(
        loader=theme.env.loader,
        autoescape=True,
        undefined=theme.env.undefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    stock.globals.update(theme.env.globals)
    theme.env = stock
    assert everything() == ours


# -- the page views ----------------------------------------------------------------------------


def test_view_helpers_match_what_they_replace() -> None:
    for year in (1000, 1999, 2024, 9999):
        d = date(year, 3, 7)
        assert _slashed(d) == d.strftime("%Y/%m/%d")
    assert _slashed(date(999, 1, 2)) == date(999, 1, 2).strftime("%Y/%m/%d")
    for department in (None, "", "Dept"):
        for name in ("", "Inst"):
            assert _institution(department, name) == ", ".join(p for p in (department, name) if p)
    html = _with_backrefs("<p>Note.</p>\n", ("fnref-1", 'a"b<'))
    assert type(html) is Markup
    assert html == (
        '<p>Note. <a href="#fnref-1" class="cp-backref" aria-label="Back to the text">↩</a>'
        ' <a href="#a&#34;b&lt;" class="cp-backref" aria-label="Back to the text">↩</a></p>'
    )


def test_a_view_prefers_its_keys_and_falls_back_to_the_dicts_attributes() -> None:
    view = View(title="t", count=3)
    assert view.title == "t" and view.count == 3
    assert view.items() == {"title": "t", "count": 3}.items() and view.get("x", 1) == 1
    with pytest.raises(AttributeError):
        view.missing  # noqa: B018
