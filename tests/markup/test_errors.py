"""Bad input: each mistake is one UserError whose `file:line:` points at the line to edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuitpress.errors import UserError

from .helpers import build, markup

FILE = "content/page.md"
HEAD = "---\ntitle: A page\n---\n"  # three lines: the body starts on line 4

# (id, source, line, words the message must contain)
CASES = [
    ("yaml-syntax", "---\ntitle: A page\nauthors: [Ada\n---\nText.\n", 3, "not valid YAML"),
    (
        "yaml-syntax-mid",
        "---\ntitle: x\n  bad: indent: here\ndraft: false\n---\n",
        3,
        "not valid YAML",
    ),
    ("no-front-matter", "Just text.\n", 1, "no front matter"),
    ("unclosed-front-matter", "---\ntitle: x\n\nText.\n", 1, "never closed"),
    ("missing-title", "---\ndescription: d\n---\n", 1, "no 'title'"),
    (
        # An unknown key is a warning (tests/markup/test_front_matter_compat.py); two spellings
        # of one key are an error.
        "key-and-alias",
        "---\ntitle: x\ndate: 2020-01-01\npublished: 2020-01-02\n---\n",
        4,
        "both 'date' and 'published'",
    ),
    (
        "bad-date",
        "---\ntitle: x\ndraft: false\npublished: last spring\n---\n",
        4,
        "'published' is not a date",
    ),
    ("impossible-date", "---\ntitle: x\nupdated: 2020-02-30\n---\n", 3, "'updated'"),
    ("bad-type", "---\ntitle: x\ndraft: maybe\n---\n", 3, "'draft' must be true or false"),
    (
        "bad-authors",
        "---\ntitle: x\nauthors:\n  - {name: A, orcid: 1234}\n---\n",
        4,
        "orcid '1234' is not an ORCID iD",
    ),
    (
        "missing-bib-file",
        "---\ntitle: x\nbibliography: [nope.bib]\n---\n",
        3,
        "'nope.bib' not found",
    ),
    (
        "unknown-directive",
        HEAD + "\n:::{figur} img/red.png\n:::\n",
        5,
        "unknown directive '{figur}'",
    ),
    ("unknown-directive-backticks", HEAD + "\n```{nope}\n```\n", 5, "unknown directive '{nope}'"),
    (
        "unknown-option",
        HEAD + ":::{probe} x\n:count: 2\n:mdoe: fast\n:::\n",
        6,
        "unknown option ':mdoe:'",
    ),
    ("bad-option-value", HEAD + ":::{probe} x\n:count: 99\n:::\n", 5, "':count:'"),
    ("bad-option-choice", HEAD + ":::{probe} x\n:mode: medium\n:::\n", 5, "':mode:'"),
    ("bad-layout", HEAD + ":::{note}\n:layout: wide\n:::\n", 5, "':layout:'"),
    ("bad-label", HEAD + ":::{probe} x\n:name: 3d figure\n:::\n", 5, "':name:'"),
    ("option-twice", HEAD + ":::{probe} x\n:count: 1\n:count: 2\n:::\n", 6, "given twice"),
    ("missing-argument", HEAD + "\n\n:::{probe}\n:::\n", 6, "needs an argument"),
    ("unexpected-argument", HEAD + ":::{aside} margin\n:::\n", 4, "takes no argument"),
    ("unclosed-fence", HEAD + "Text.\n\n:::{note}\nnever closed\n", 6, "never closed"),
    ("unclosed-backtick-fence", HEAD + "```{note}\nnever closed\n", 4, "never closed"),
    ("nested-same-length", HEAD + ":::{note}\n:::{probe} x\ninner\n:::\n:::\n", 5, "never closed"),
    ("stray-closing-colons", HEAD + "Text.\n\n:::\n", 6, "closes nothing"),
    ("unknown-role", HEAD + "Line 4.\nSee {chp}`conv2:7` here.\n", 5, "unknown role '{chp}'"),
    (
        "unknown-role-in-table",
        HEAD + "| a | b |\n|---|---|\n| 1 | {nope}`x` |\n",
        6,
        "unknown role '{nope}'",
    ),
    ("unknown-role-in-quote", HEAD + "> quote\n> {nope}`x`\n", 5, "unknown role '{nope}'"),
    ("unknown-role-after-math", HEAD + "A\nB $x$ C\n{nope}`x`\n", 6, "unknown role '{nope}'"),
    (
        "unknown-role-in-caption",
        HEAD + ":::{probe} x\nA {nope}`y`.\n:::\n",
        5,
        "unknown role '{nope}'",
    ),
    (
        "unknown-cite",
        HEAD + "\nAs shown {cite}`olah2020zom`.\n",
        5,
        "unknown citation key 'olah2020zom'",
    ),
    ("empty-cite", HEAD + "Empty {cite}` , `.\n", 4, "empty citation"),
    (
        "unknown-numref",
        HEAD + ":::{probe} x\n:name: fig-a\n:::\n\nSee {numref}`fig-b`.\n",
        8,
        "unknown label 'fig-b'",
    ),
    (
        "numref-unnumbered",
        HEAD + ":::{note}\n:name: n1\nx\n:::\n{numref}`n1`\n",
        8,
        "not a numbered figure",
    ),
    (
        "duplicate-label",
        HEAD + ":::{probe} a\n:name: fig-a\n:::\n:::{probe} b\n:name: fig-a\n:::\n",
        8,
        "duplicate label 'fig-a'",
    ),
    ("bad-math-inline", HEAD + "\nok $x$ then\nbad $x^$ here.\n", 6, "bad math"),
    ("bad-math-block", HEAD + "\n$$\n\\frac{a}{b\n$$\n", 5, "unclosed '{'"),
    ("unknown-latex-command", HEAD + "$\\foo{x}$\n", 4, "unknown LaTeX command \\foo"),
    ("bad-math-in-footnote", HEAD + "A[^n].\n\n[^n]: Bad $a^$.\n", 6, "bad math"),
    (
        "missing-image",
        HEAD + "\n:::{figure} img/blue.png\n:::\n",
        5,
        "image 'img/blue.png' not found",
    ),
    ("not-an-image", HEAD + ":::{figure} notes.txt\n:::\n", 4, "not an image"),
    (
        "image-outside-site",
        HEAD + ":::{figure} ../../secret.png\n:::\n",
        4,
        "leaves the site folder",
    ),
    ("footnote-twice", HEAD + "A[^n].\n\n[^n]: One.\n\n[^n]: Two.\n", 8, "defined twice"),
    ("doi-not-a-doi", "---\ntitle: T\ndoi: my paper\n---\n", 3, "is not a DOI"),
    ("doi-with-brace", "---\ntitle: T\ndoi: 10.1234/a}b\n---\n", 3, "is not a DOI"),
    ("footnote-undefined", HEAD + "One.\n\nA[^nope] b.\n", 6, "footnote [^nope] is not defined"),
    ("footnote-typo", HEAD + "A[^note] b.\n\n[^notes]: Text.\n", 4, "did you mean [^notes]"),
    (
        "footnote-undefined-in-footnote",
        HEAD + "A[^n].\n\n[^n]: See [^m].\n",
        6,
        "[^m] is not defined",
    ),
]


@pytest.mark.parametrize("source,line,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(source: str, line: int, words: str) -> None:
    with pytest.raises(UserError) as info:
        build(source, file=FILE)
    err = info.value
    assert err.format().startswith(f"{FILE}:{line}: "), err.format()
    assert words in err.format(), err.format()
    assert "\n" not in err.format()


def test_doi_pasted_with_its_resolver_prefix_is_kept_bare() -> None:
    from circuitpress.markup.frontmatter import parse_front_matter

    for pasted in ("https://doi.org/10.23915/distill.00024", "doi: 10.23915/distill.00024"):
        meta = parse_front_matter(f"title: T\ndoi: '{pasted}'\n", FILE, 2)
        assert meta.doi == "10.23915/distill.00024"


def test_escaped_footnote_marker_is_literal_text() -> None:
    for written in ("\\[^label]", "[\\^label]", "[^label\\]", "&#91;^label]"):
        html = build(HEAD + f"Write {written} for a footnote.\n").body_html
        assert "Write [^label] for a footnote." in html, written
    # An escaped one elsewhere in the paragraph does not excuse a plain undefined one.
    with pytest.raises(UserError, match=r"\[\^a\] is not defined"):
        build(HEAD + "Write \\[^a] and A[^a] here.\n")


def test_did_you_mean_hints() -> None:
    cases = {
        HEAD + ":::{figur} img/red.png\n:::\n": "did you mean '{figure}'"[:0] + "'figure'",
        HEAD + ":::{probe} x\n:mdoe: fast\n:::\n": "'mode'",
        HEAD + "{chp}`x`\n": "'chip'",
        HEAD + "{cite}`olah2020zom`\n": "'olah2020zoom'",
        HEAD + ":::{probe} x\n:name: fig-alpha\n:::\n{numref}`fig-alpah`\n": "'fig-alpha'",
    }
    for source, expected in cases.items():
        with pytest.raises(UserError) as info:
            build(source, file=FILE)
        assert (
            info.value.hint and "did you mean" in info.value.hint and expected in info.value.hint
        ), info.value


def test_unknown_option_lists_the_directives_options() -> None:
    with pytest.raises(UserError) as info:
        build(HEAD + ":::{probe} x\n:zzz: 1\n:::\n", file=FILE)
    assert info.value.hint is not None
    for name in ("count", "mode", "name", "layout", "class"):
        assert name in info.value.hint


def test_bibtex_syntax_error_names_the_bib_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "references.bib").write_text(
        "@article{ok, title={Fine}, year={2020}}\n\n"
        "@article{broken,\n  title = {Unclosed,\n  year = 2020\n}\n"
        "@misc{after, title={After}}\n",
        encoding="utf-8",
    )
    with pytest.raises(UserError) as info:
        markup(tmp_path)
    assert info.value.format().startswith("references.bib:3: bad BibTeX"), info.value.format()


def test_page_bibliography_error_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "extra.bib").write_text(
        "@misc{a, title={A}}\n@misc{a, title={Again}}\n", encoding="utf-8"
    )
    m = markup(tmp_path)
    with pytest.raises(UserError) as info:
        build("---\ntitle: x\nbibliography: refs/extra.bib\n---\n", file=FILE, m=m)
    assert info.value.format().startswith("refs/extra.bib:2: "), info.value.format()
    assert "used twice" in info.value.message


def test_directive_plan_errors_get_the_directive_line() -> None:
    # A UserError raised without a location inside plan() is placed at the directive.
    from circuitpress.extensions import Directive

    from .helpers import markup as make

    class Picky(Directive):
        name = "picky"

        def plan(self, call, ctx):  # type: ignore[no-untyped-def]
            raise UserError("not today")

        def render(self, call, ctx):  # type: ignore[no-untyped-def]
            return ""

    m = make()
    m.registry.add_directive(Picky)
    with pytest.raises(UserError) as info:
        build(HEAD + "\n\n```{picky}\n```\n", file=FILE, m=m)
    assert info.value.format() == f"{FILE}:6: not today"


def test_registry_role_in_text_parsed_after_planning_is_an_error() -> None:
    # A note's title is Markdown rendered by the directive itself, after planning.
    with pytest.raises(UserError) as info:
        build(HEAD + "\n:::{note} About {chip}`conv2:7`\nBody.\n:::\n", file=FILE)
    assert info.value.format().startswith(f"{FILE}:5: role {{chip}} cannot be used here")
