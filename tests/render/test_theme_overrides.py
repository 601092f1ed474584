"""A site overrides the theme file by file from SITE/themes/NAME/; mistakes there are user
errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from theme_stand_ins import FrontMatter, RenderedPage, make_config

from circuitpress.config import BuildSettings
from circuitpress.errors import UserError
from circuitpress.render.html import Theme


def site_with(tmp_path: Path, files: dict[str, str], theme: str = "distill") -> Path:
    site = tmp_path / "site"
    for rel, text in files.items():
        path = site / "themes" / theme / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return site


def page(theme: Theme) -> str:
    return theme.render_page(FrontMatter(), RenderedPage(), slug="a", series_nav=None, draft=False)


def test_override_template_wins_and_others_fall_back(tmp_path):
    site = site_with(
        tmp_path, {"templates/partials/byline.html": '<div class="my-byline">mine</div>\n'}
    )
    html = page(Theme(make_config(site)))
    assert '<div class="my-byline">mine</div>' in html
    assert "cp-byline" not in html
    assert "cp-appendix" in html  # the rest still comes from the built-in theme


def test_override_asset_wins_and_new_assets_are_linked_in_order(tmp_path):
    site = site_with(
        tmp_path,
        {
            "assets/css/distill.css": "body { color: red; }\n",
            "assets/css/units.css": ".u {}\n",
            "assets/css/circuits.css": ".c {}\n",
            "assets/js/zz.js": "1;\n",
            "assets/img/logo.svg": "<svg/>",
            "assets/.hidden": "x",
        },
    )
    theme = Theme(make_config(site))
    assets = dict(theme.assets())
    assert assets["assets/theme/css/distill.css"] == b"body { color: red; }\n"
    assert "assets/theme/img/logo.svg" in assets and "assets/theme/.hidden" not in assets
    assert [p for p, _ in theme.assets()] == sorted(assets)
    html = page(theme)
    css = [
        line.split('"')[3].split("?")[0] for line in html.splitlines() if 'rel="stylesheet"' in line
    ]
    js = [
        line.split('"')[1].split("?")[0]
        for line in html.splitlines()
        if line.startswith("<script src=")
    ]

    def expected(kind: str) -> list[str]:
        prefix = f"assets/theme/{kind}/"
        names = sorted(
            p[len(prefix) :] for p in assets if p.startswith(prefix) and p.endswith("." + kind)
        )
        return [f"/{prefix}{n}" for n in sorted(names, key=lambda n: n != f"distill.{kind}")]

    assert css[0] == "/assets/theme/css/distill.css" and css == expected("css")
    assert {"/assets/theme/css/circuits.css", "/assets/theme/css/units.css"} <= set(css)
    assert css.index("/assets/theme/css/circuits.css") < css.index("/assets/theme/css/units.css")
    assert js[0] == "/assets/theme/js/distill.js" and js[-1] == "/assets/theme/js/zz.js"
    assert js == expected("js")


def test_asset_version_follows_content(tmp_path):
    plain = Theme(make_config(tmp_path / "plain")).asset("css/distill.css")
    site = site_with(tmp_path, {"assets/css/distill.css": "body {}\n"})
    changed = Theme(make_config(site)).asset("css/distill.css")
    assert plain.split("?v=")[0] == changed.split("?v=")[0]
    assert plain != changed


def test_a_site_theme_of_its_own_falls_back_to_distill(tmp_path):
    site = site_with(tmp_path, {"templates/404.html": "<p>lost</p>\n"}, theme="mine")
    config = make_config(site)
    config = type(config)(
        root=config.root, path=config.path, site=config.site, build=BuildSettings(theme="mine")
    )
    theme = Theme(config)
    assert theme.render_404() == "<p>lost</p>\n"
    assert "cp-appendix" in page(theme)


def test_unknown_theme_names_the_config_line(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "circuitpress.toml").write_text('[site]\ntitle = "x"\n\n[build]\ntheme = "distil"\n')
    config = make_config(site)
    config = type(config)(
        root=config.root, path=config.path, site=config.site, build=BuildSettings(theme="distil")
    )
    with pytest.raises(UserError) as err:
        Theme(config)
    assert err.value.format().startswith("circuitpress.toml:5: unknown theme 'distil'")
    assert "did you mean 'distill'?" in err.value.format()


def test_template_syntax_error_is_located(tmp_path):
    site = site_with(tmp_path, {"templates/page.html": "<p>\n{% if x %}\n</p>\n"})
    with pytest.raises(UserError) as err:
        page(Theme(make_config(site)))
    assert err.value.format().startswith("themes/distill/templates/page.html:")
    assert "template syntax error" in err.value.format()


def test_undefined_variable_in_override_is_located(tmp_path):
    site = site_with(tmp_path, {"templates/page.html": "<p>ok</p>\n<p>{{ page.nonesuch }}</p>\n"})
    with pytest.raises(UserError) as err:
        page(Theme(make_config(site)))
    assert err.value.format().startswith("themes/distill/templates/page.html:2: template error:")


def test_missing_template_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="has no template 'nope.html'"):
        Theme(make_config(tmp_path / "site")).render_template("nope.html", {})


def test_error_in_an_overridden_partial_names_the_partial(tmp_path):
    site = site_with(
        tmp_path, {"templates/partials/title.html": "<h1>{{ page.title }}</h1>\n{{ nope.x }}\n"}
    )
    with pytest.raises(UserError) as err:
        page(Theme(make_config(site)))
    assert err.value.format().startswith(
        "themes/distill/templates/partials/title.html:2: template error:"
    )


def test_the_builtin_theme_is_no_override_of_itself() -> None:
    """circuitpress's own repository is a site whose themes/ holds the built-in theme: it must
    not count as an override (a bug in a built-in template is an internal error, not a user
    error, and assets are read once)."""
    from circuitpress.config import load_config
    from circuitpress.render.html import BUILTIN_THEMES, Theme

    repo = Path(__file__).resolve().parents[2]
    theme = Theme(load_config(repo))
    assert theme.layers == [BUILTIN_THEMES / "distill"]
    assert not theme._is_override("page.html")
