"""Inputs that used to take minutes or crash: a huge BibTeX field, LaTeX pylatexenc cannot read,
a model input smaller than the procedural dataset's margins, and a reader who hangs up on the
preview server mid-response. Each is a located line (exit 1), a working build, or silence."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from circuitpress.analysis.models import procedural
from circuitpress.cli import cli
from circuitpress.markup.bibliography import MAX_FIELD_CHARS

FM = "---\ntitle: T\n---\n"
SITE = '[site]\ntitle = "S"\n'


def write(root: Path, files: dict[str, str]) -> Path:
    base = {"circuitpress.toml": SITE, "content/a.md": FM + "As shown {cite}`big`.\n"}
    for rel, text in {**base, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    return root


def build(root: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["build", str(root), "--quiet"])
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def one_error(root: Path) -> str:
    code, lines = build(root)
    assert code == 1, lines
    assert len(lines) == 1, lines
    return lines[0]


def entry(field: str, value: str, key: str = "big") -> str:
    # The field is on line 4 of the file (after an ordinary entry).
    title = "" if field == "title" else "  title = {Big},\n"
    return (
        "@article{other, title = {Other}, year = {2020}}\n\n"
        f"@article{{{key},\n  {field} = {{{value}}},\n{title}}}\n"
    )


# --- 4. BibTeX ---------------------------------------------------------------------------------


def test_a_3_mb_field_is_refused_at_its_line_within_10_s(tmp_path: Path) -> None:
    root = write(tmp_path, {"references.bib": entry("abstract", "lorem ipsum " * 262_144)})
    start = time.perf_counter()
    message = one_error(root)
    assert time.perf_counter() - start < 10
    assert message.startswith("references.bib:4: entry 'big': field 'abstract' is 3,145,728 "), (
        message
    )
    assert f"more than the {MAX_FIELD_CHARS:,}" in message


def test_a_3_mb_field_of_latex_accents_is_refused_as_fast(tmp_path: Path) -> None:
    root = write(tmp_path, {"references.bib": entry("note", '{\\"o}' * 600_000)})
    start = time.perf_counter()
    assert one_error(root).startswith("references.bib:4: entry 'big': field 'note'")
    assert time.perf_counter() - start < 10


def test_a_field_at_the_limit_is_decoded(tmp_path: Path) -> None:
    text = ('G{\\"o}del ' * MAX_FIELD_CHARS)[:MAX_FIELD_CHARS]
    text = text[: text.rfind(" ")].ljust(MAX_FIELD_CHARS)  # no accent cut in half
    root = write(tmp_path, {"references.bib": entry("title", text)})
    code, lines = build(root)
    assert code == 0, lines
    assert "Gödel" in (root / "_site" / "a" / "index.html").read_text(encoding="utf-8")


def test_a_long_string_macro_is_refused_at_its_line(tmp_path: Path) -> None:
    bib = "@string{long = {" + "x" * (MAX_FIELD_CHARS + 1) + "}}\n@article{big, title = long}\n"
    root = write(tmp_path, {"references.bib": bib})
    assert one_error(root).startswith("references.bib:1: @string 'long' is 65,537 characters")


def test_a_long_field_of_a_pages_own_bibliography_names_that_file(tmp_path: Path) -> None:
    page = "---\ntitle: T\nbibliography: [refs/own.bib]\n---\nAs shown {cite}`big`.\n"
    root = write(tmp_path, {"content/a.md": page, "refs/own.bib": entry("title", "x" * 100_000)})
    assert one_error(root).startswith("refs/own.bib:4: entry 'big': field 'title'")


@pytest.mark.parametrize(
    "value",
    [
        "{" * 5000 + "}" * 5000,  # nested deeper than pylatexenc's recursion allows
        "\\(" * 3000,  # math openings that never close
    ],
    ids=["deep-braces", "unclosed-math"],
)
def test_latex_that_cannot_be_decoded_is_a_located_error(tmp_path: Path, value: str) -> None:
    # bibtexparser returned a MiddlewareErrorBlock here, and `block.fields` raised
    # AttributeError: an internal error (exit 3).
    root = write(tmp_path, {"references.bib": entry("note", value)})
    message = one_error(root)
    assert message.startswith("references.bib:4: entry 'big': field 'note' cannot be read as"), (
        message
    )
    assert "(check its braces and backslashes)" in message


def test_urls_are_not_decoded_and_may_hold_latex_characters(tmp_path: Path) -> None:
    bib = entry("url", "https://example.org/?a=1&b=%20{x}_y") + (
        '@article{g, author = {G{\\"o}del, Kurt}, title = {{\\"U}ber}}\n'
    )
    page = FM + "As shown {cite}`big` and {cite}`g`.\n"
    root = write(tmp_path, {"references.bib": bib, "content/a.md": page})
    code, lines = build(root)
    assert code == 0, lines
    html = (root / "_site" / "a" / "index.html").read_text(encoding="utf-8")
    assert 'href="https://example.org/?a=1&amp;b=%20{x}_y"' in html
    assert "Gödel" in html and "Über" in html


# --- 5. small model inputs ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 7, 16, 24, 32, 40, 47])
def test_the_procedural_dataset_draws_every_class_at_small_sizes(size: int) -> None:
    # The margins of the shapes are up to 24 pixels: 32 x 32 raised "high - low < 0".
    images, labels = procedural.generate_images(0, 200, procedural.HELDOUT_SEED, size)
    assert images.shape == (200, size, size, 3) and images.dtype == np.uint8
    assert set(labels.tolist()) == set(range(len(procedural.DATASETS["shapes"].classes)))


def _original_random_point(
    rng: np.random.Generator, size: int, margin: float
) -> tuple[float, float]:
    return (float(rng.uniform(margin, size - margin)), float(rng.uniform(margin, size - margin)))


@pytest.mark.parametrize("size", [48, 64, 96])
def test_sizes_that_fit_the_margins_draw_what_they_always_drew(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The zoo was trained on 64-pixel images and caches hold results on them: unchanged bytes.
    now, _ = procedural.generate_images(0, 100, procedural.TRAIN_SEED, size)
    monkeypatch.setattr(procedural, "_random_point", _original_random_point)
    before, _ = procedural.generate_images(0, 100, procedural.TRAIN_SEED, size)
    assert now.tobytes() == before.tobytes()


@pytest.mark.parametrize(
    "size,got",
    [("[0, 32]", "[0, 32]"), ("[32.5, 32]", "[32.5, 32]"), ("[32, true]", "[32, True]")]
    + [("[5000, 32]", "[5000, 32]"), ("[32]", "[32]"), ('"32x32"', "'32x32'")],
)
def test_an_input_size_that_cannot_be_drawn_is_refused_at_its_line(
    tmp_path: Path, size: str, got: str
) -> None:
    toml = SITE + f'[models.m]\nzoo = "shapes-a"\ninput_size = {size}\n'
    root = write(tmp_path, {"circuitpress.toml": toml, "content/a.md": FM + "Text.\n"})
    message = one_error(root)
    assert message.startswith("circuitpress.toml:5: 'input_size' must be a list of 2 whole"), (
        message
    )
    assert f"(got {got})" in message


ZOO_SITE = (
    SITE + '[models.m]\nzoo = "shapes-a"\ninput_size = [32, 32]\n'
    '[build]\ndevice = "cpu"\ndataset_sample = 64\n'
)


@pytest.mark.slow
def test_a_zoo_model_with_a_32_pixel_input_shows_examples(tmp_path: Path) -> None:
    # About 10 s on a CPU: the examples pass runs the zoo model over 64 procedural images.
    page = "---\ntitle: T\nmodel: m\n---\n:::{examples} conv1:3\n:k: 4\n:::\n"
    root = write(tmp_path, {"circuitpress.toml": ZOO_SITE, "content/a.md": page})
    code, lines = build(root)
    assert code == 0, lines
    html = (root / "_site" / "a" / "index.html").read_text(encoding="utf-8")
    assert html.count("<img") >= 4
    assert list((root / "_site" / "assets" / "figures").glob("*.png"))


# --- 6. a reader who hangs up ------------------------------------------------------------------


def _handlers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request" in t.name and t.is_alive()]


def test_a_client_that_hangs_up_mid_response_leaves_the_terminal_clean(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from circuitpress.serve.server import PreviewServer

    root = write(tmp_path, {"content/a.md": FM + "Hello.\n"})
    # Far more than the socket buffers hold, so the server is still writing when the client
    # goes: 32 MB of a static file, read at request time.
    (root / "static").mkdir()
    (root / "static" / "big.bin").write_bytes(b"\0" * (32 << 20))
    server = PreviewServer(root, port=0, quiet=True, watch=False).start()
    try:
        host, port = server._httpd.server_address[:2]  # noqa: SLF001 - the test needs the socket
        capfd.readouterr()
        for reset in (True, False, True):
            client = socket.create_connection((host, port), timeout=10)
            client.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(64).startswith(b"HTTP/1.1 200")
            if reset:  # an abortive close (RST): the server's next write fails at once
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        end = time.monotonic() + 15
        while _handlers() and time.monotonic() < end:
            time.sleep(0.05)
        assert not _handlers(), "a handler is still writing"
        # The server is still there for the next reader.
        client = socket.create_connection((host, port), timeout=10)
        client.sendall(b"GET /a/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := client.recv(65536):
            reply += chunk
        client.close()
        assert reply.startswith(b"HTTP/1.1 200") and b"Hello." in reply
    finally:
        server.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err
    assert err == "", err


TINY = """\
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
"""


def test_a_small_model_input_shows_examples_of_the_procedural_dataset(tmp_path: Path) -> None:
    # The same cause as the zoo case, with a one-layer factory model: seconds, not minutes.
    toml = (
        SITE + '[models.m]\nfactory = "tinynet_bounded:build"\ninput_size = [16, 16]\n'
        '[build]\ndevice = "cpu"\ndataset_sample = 16\n'
    )
    page = "---\ntitle: T\nmodel: m\n---\n:::{examples} 0:1\n:k: 2\n:::\n"
    root = write(
        tmp_path, {"circuitpress.toml": toml, "tinynet_bounded.py": TINY, "content/a.md": page}
    )
    code, lines = build(root)
    assert code == 0, lines
    assert (root / "_site" / "a" / "index.html").read_text(encoding="utf-8").count("<img") >= 2
