"""The error family: every mistake a user can make becomes one line `file:line: what (hint)`.

Package code raises `UserError` for anything the author can fix (config, front matter, directive,
option, reference, citation, model file). The CLI prints `err.format()` and exits 1. Anything
else that escapes is an internal error (exit 3).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


class UserError(Exception):
    """An error the author can fix. Shown as one line, never with a traceback."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.hint = hint
        # The analysis requests being computed when it was raised without a location (a model
        # that fails on one layer): the build then names the page line that asked for them.
        self.requests: tuple[object, ...] = ()

    def located(self, file: str | Path, line: int | None) -> "UserError":
        """Fill in a location the raiser did not know (e.g. a converter deep inside markup)."""
        if self.file is None:
            self.file = str(file)
        if self.line is None:
            self.line = line
        return self

    def format(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line if self.line is not None else 1}: "
        hint = f" ({self.hint})" if self.hint else ""
        # One line, always: a multi-line message would break editors' file:line parsing.
        return (where + self.message + hint).replace("\n", " ")

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class BuildWarning:
    """A problem that does not stop the build (a failed claim, an unused label); `--strict`
    fails."""

    message: str
    file: str | None = None
    line: int | None = None
    hint: str | None = None

    def format(self) -> str:
        return UserError(self.message, file=self.file, line=self.line, hint=self.hint).format()


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3) -> str | None:
    """A 'did you mean …?' hint for near misses, or None when nothing is close."""
    options = sorted(set(candidates))
    close = difflib.get_close_matches(word, options, n=n, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


def choices_hint(word: str, candidates: Iterable[str]) -> str:
    """'did you mean …?' when something is close, else the list of valid names."""
    options = sorted(set(candidates))
    near = did_you_mean(word, options)
    if near:
        return near
    if not options:
        return "none are defined"
    shown = ", ".join(options[:12]) + (", …" if len(options) > 12 else "")
    return f"expected one of: {shown}"


# C0/C1 control characters other than tab, newline and carriage return, and the two
# non-characters: invalid in XML (the feed) or HTML, and invisible in an editor. Form feed is
# valid HTML but not XML, so a title with one would break feed.xml.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
CONTROL_HINT = "often a '\\b' that a script or an escape turned into a backspace: delete it"


# The ASCII ones, for bytes.translate: deleting them leaves an ASCII text as long as it was
# exactly when it holds none. That check is 6x faster than the search, which tests each
# character against the class (7 of a 300-page build's 1,000 ms went to it).
_ASCII_CONTROL = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def control_character(text: str) -> re.Match[str] | None:
    """The first control character in `text` that no page or feed may contain, if any."""
    if text.isascii():  # (a flag of the string: no scan)
        raw = text.encode("ascii")
        if len(raw.translate(None, _ASCII_CONTROL)) == len(raw):
            return None
    return _CONTROL.search(text)
