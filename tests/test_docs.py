"""The directive reference documents every built-in directive and option."""

from pathlib import Path

from circuitpress.extensions import default_registry

DOC = (Path(__file__).parent.parent / "docs" / "directives.md").read_text()


def test_every_directive_and_option_is_documented():
    registry = default_registry()
    for name, directive in registry.directives.items():
        assert f"{{{name}}}" in DOC, f"directive {name} missing from docs/directives.md"
        for option in directive.options:
            assert f":{option}:" in DOC, (
                f"option :{option}: of {name} missing from docs/directives.md"
            )
    for role in registry.roles:
        assert f"{{{role}}}" in DOC, f"role {role} missing"
