"""Faster stand-ins for library code and earlier rules give exactly the old results."""

from __future__ import annotations

import random
import re

from markdown_it.rules_core.normalize import normalize as markdown_it_normalize

from circuitpress.markup.parser import _normalize
from circuitpress.markup.resolve import count_words


class _State:
    def __init__(self, src: str) -> None:
        self.src = src


def test_normalize_equals_markdown_its_rule() -> None:
    rng = random.Random(0)
    for _ in range(20000):
        text = "".join(rng.choice("ab \r\n\0\u2028é") for _ in range(rng.randint(0, 14)))
        ours, theirs = _State(text), _State(text)
        _normalize(ours)  # type: ignore[arg-type]
        markdown_it_normalize(theirs)  # type: ignore[arg-type]
        assert ours.src == theirs.src, repr(text)


def test_word_count_equals_runs_with_a_word_character() -> None:
    old = re.compile(r"\S*\w\S*")  # the definition: a run of non-spaces with a word character
    rng = random.Random(1)
    alphabet = " \t\n.,;(-)—é_aZ9²\u00a0\u2003\x1c\x85\u3000x'\""
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        assert count_words(text) == len(old.findall(text)), repr(text)
