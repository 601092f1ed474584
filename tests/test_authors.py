"""Group authors ('The circuitpress authors') are never inverted like a person's name."""

from datetime import date

from circuitpress.config import Author, is_organisation
from circuitpress.render.html import citation_text, scholar_name


def test_is_organisation():
    assert is_organisation("The circuitpress authors")
    assert is_organisation("Google Brain Vision Team")
    assert not is_organisation("Chris Olah")
    assert not is_organisation("Ada")


def test_citations_keep_group_names():
    assert scholar_name("The circuitpress authors") == "The circuitpress authors"
    assert scholar_name("Chris Olah") == "Olah, Chris"
    text = citation_text("Features", ["The circuitpress authors"], "Site", date(2026, 1, 1), None)
    assert text.startswith("The circuitpress authors, \u201cFeatures\u201d")


def test_article_bibtex_braces_a_group(prose_site):
    from circuitpress.markup.citation import _bib_name

    assert _bib_name(Author("The circuitpress authors")) == "{The circuitpress authors}"
    assert _bib_name(Author("Chris Olah")) == "Olah, Chris"
