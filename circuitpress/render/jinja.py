"""The Jinja2 environment of the theme: Jinja's, with cheaper output and compiled templates kept.

Output is byte for byte Jinja's; only the work differs:

- `{{ x }}` is written through `output()` instead of markupsafe's `escape()`, which wraps each
  escaped value in a Markup that the template then throws away when it joins its output;
- the parts of one output (`<li id="{{ a }}">{{ b }}</li>`) are yielded as one string, not one
  yield each, since every yield travels up through each include and block around it;
- template globals are a dict, not a ChainMap that every render and include copies in Python;
- the built-in theme's compiled templates are kept between builds (`CompiledTemplates`), like
  Python's .pyc.

Measured on the 300-page prose site (cachegrind, instructions of one build): Theme.render_page
672 M -> 289 M, with render/html.py's page views; the templates a build renders, compiled
270 M -> 30 M loaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import marshal
import os
import stat
import sys
import time
from pathlib import Path
from types import CodeType
from typing import Any, MutableMapping

import jinja2
import jinja2.compiler
from jinja2 import nodes
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

try:  # markupsafe >= 3: escape() without wrapping its result in a Markup
    from markupsafe import _escape_inner
except ImportError:  # pragma: no cover - markupsafe 2

    def _escape_inner(s: str, /) -> str:
        return str(escape(s))


escape_text = _escape_inner  # str(escape(text)) for a str, without the Markup in between
join = "".join


def output(value: Any) -> str:
    """What `{{ value }}` writes in an autoescaped template: the text of `escape(value)`.

    Jinja joins what a template writes into one str, so the Markup `escape` returns is thrown
    away at once; it cost a second Python call (Markup.__new__), two more for a value that
    already is Markup, ~110 times a page."""
    if type(value) is str:
        return _escape_inner(value)
    if type(value) is Markup:
        return value
    if type(value) is int:  # digits and a '-', nothing to escape (footnote numbers, depths)
        return str(value)
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return _escape_inner(str(value))


class CodeGenerator(jinja2.compiler.CodeGenerator):
    """Jinja's code generator, with `{{ … }}` written through `output` (the hook Jinja's own
    NativeCodeGenerator overrides) and each output yielded as one string."""

    def visit_Template(self, node: nodes.Template, frame: Any = None) -> None:
        self.writeline("from circuitpress.render.jinja import join as cp_join, output as cp_output")
        super().visit_Template(node, frame)

    def visit_Output(self, node: nodes.Output, frame: Any) -> None:
        """`<li id="{{ a }}">{{ b }}</li>` as one `yield cp_join(('<li id="', cp_output(a), …))`
        where Jinja yields its five parts one by one: each yield travels up through every
        include and block around it (4 generators deep in a page's partials)."""
        finalize = self._make_finalize()
        if (
            len(node.nodes) < 2
            or frame.buffer is not None
            or frame.require_output_check
            or finalize.src is not None
        ):
            super().visit_Output(node, frame)
            return
        # Jinja's folding of constants (its visit_Output), then its buffered form of the output
        # with the buffer replaced by one joined yield.
        body: list[list[Any] | nodes.Expr] = []
        for child in node.nodes:
            try:
                if not (finalize.const or isinstance(child, nodes.TemplateData)):
                    raise nodes.Impossible()
                const = self._output_child_to_const(child, frame, finalize)
            except (nodes.Impossible, Exception):
                body.append(child)
                continue
            if body and isinstance(body[-1], list):
                body[-1].append(const)
            else:
                body.append([const])
        if len(body) == 1 and isinstance(body[0], list):
            self.writeline("yield " + self._output_const_repr(body[0]))
            return
        self.writeline("yield cp_join((")
        self.indent()
        for item in body:
            if isinstance(item, list):
                self.writeline(self._output_const_repr(item) + ",")
            else:
                self.newline(item)
                self._output_child_pre(item, frame, finalize)
                self.visit(item, frame)
                self._output_child_post(item, frame, finalize)
                self.write(",")
        self.outdent()
        self.writeline("))")

    def _output_child_pre(self, node: nodes.Expr, frame: Any, finalize: Any) -> None:
        if frame.eval_ctx.autoescape and not frame.eval_ctx.volatile and finalize.src is None:
            self.write("cp_output(")
        else:
            super()._output_child_pre(node, frame, finalize)


class Environment(jinja2.Environment):
    code_generator_class = CodeGenerator

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as a dict of its own, not Jinja's ChainMap over the
        environment's: every render and `{% include %}` copies them (`dict(globals)`,
        `set(globals)`), which for a ChainMap runs in Python (7 times a page). The theme sets
        its globals before the first template loads and never after (as Jinja asks), so the
        copy holds the same."""
        return {**self.globals, **(d or {})}


class CompiledTemplates(jinja2.BytecodeCache):
    """Templates under `roots` (the built-in themes) as compiled code, kept between builds
    like Python's .pyc. Compiling the ~10 templates a build renders (Jinja's lexer, parser and
    code generator, then Python's compile) is ~30 ms of every build; loading them ~1 ms. A
    site's own templates (SITE/themes/) are compiled each build, as before.

    The code is loaded and run, so it is read only from a folder of the user's own that no one
    else can write to, `$XDG_CACHE_HOME/circuitpress/templates` (else ~/.cache/…), created
    0700; a folder or file of another user, or writable by others, is not used, and a symlink
    is not followed. Each file starts with everything that shapes the code: Jinja's and
    Python's versions, the environment's syntax options, this module's own bytes (its code
    generator), and the checksum of the template's source, so an edited template or an
    upgraded library compiles afresh. As Python does under -B or PYTHONDONTWRITEBYTECODE,
    `sys.dont_write_bytecode` keeps reading the folder but writes nothing to it."""

    def __init__(self, folder: Path, salt: str, roots: tuple[str, ...]) -> None:
        self.folder, self.salt, self.roots = folder, salt, roots
        self.pruned = False  # files of other versions removed (once, on the first write)

    @classmethod
    def create(cls, env: jinja2.Environment, roots: tuple[Path, ...]) -> CompiledTemplates | None:
        """For `env` and the template folders under `roots`; None where there is no private
        folder to keep them in (Windows, no home)."""
        folder = _user_cache_dir()
        version = getattr(jinja2, "__version__", None)
        generator = _own_digest()
        if folder is None or not isinstance(version, str) or generator is None:
            return None
        settings = (
            version,
            generator,
            sys.implementation.cache_tag,
            importlib.util.MAGIC_NUMBER.hex(),
            f"{env.code_generator_class.__module__}.{env.code_generator_class.__qualname__}",
            env.block_start_string,
            env.block_end_string,
            env.variable_start_string,
            env.variable_end_string,
            env.comment_start_string,
            env.comment_end_string,
            env.line_statement_prefix,
            env.line_comment_prefix,
            env.trim_blocks,
            env.lstrip_blocks,
            env.newline_sequence,
            env.keep_trailing_newline,
            _stable(env.autoescape),  # select_autoescape()'s function has an address
            env.optimized,
            env.finalize is None,
            env.is_async,
            tuple(sorted(env.extensions)),
        )
        return cls(folder / "templates", repr(settings), tuple(f"{r}{os.sep}" for r in roots))

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        if filename is None or not filename.startswith(self.roots):
            return Bucket(environment, "", "")  # not kept: compiled, never written
        return super().get_bucket(environment, name, filename, source)

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return hashlib.sha256(f"{self.salt}\0{filename}\0{name}".encode()).hexdigest()

    def _header(self, bucket: Bucket) -> bytes:
        return f"circuitpress template\0{self.salt}\0{bucket.checksum}\0".encode()

    def load_bytecode(self, bucket: Bucket) -> None:
        data = _read_private(self.folder, bucket.key) if bucket.key else None
        header = self._header(bucket)
        if data is None or not data.startswith(header):
            return  # compiled, then written over
        try:
            code = marshal.loads(data[len(header) :])
        except (EOFError, ValueError, TypeError):
            return
        if isinstance(code, CodeType):
            bucket.code = code

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.key and bucket.code is not None and not sys.dont_write_bytecode:
            data = self._header(bucket) + marshal.dumps(bucket.code)
            _write_private(self.folder, bucket.key, data)
            if not self.pruned:
                self.pruned = True
                _prune_private(self.folder, time.time() - KEPT_SECONDS)


# A kept file is never written again while it is valid, so its age says nothing of its use:
# what was written more than 30 days ago is removed when a build next writes one (another
# Jinja, Python or circuitpress leaves files no build reads again), and a template still in
# use is compiled once more, ~3 ms.
KEPT_SECONDS = 30 * 24 * 3600


def _stable(value: Any) -> Any:
    """`value`, or for a function its name: its repr holds an address, new in each process."""
    return f"{value.__module__}.{value.__qualname__}" if callable(value) else value


def _prune_private(folder: Path, before: float) -> None:
    """Remove the kept files of `folder` (a private one, see _open_private_dir) last written
    before `before`."""
    fd = _open_private_dir(folder, create=False)
    if fd is None:
        return
    try:
        with os.scandir(fd) as entries:
            old = [
                e.name
                for e in entries
                if e.is_file(follow_symlinks=False)
                and e.stat(follow_symlinks=False).st_mtime < before
            ]
        for name in old:
            try:
                os.unlink(name, dir_fd=fd)
            except OSError:
                pass
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.cache
def _own_digest() -> str | None:
    """SHA-256 of this module's file: what the compiled code of a template depends on besides
    Jinja (`CodeGenerator`, the names it imports), read once per process."""
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    except OSError:
        return None


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW


def _user_cache_dir() -> Path | None:
    """`$XDG_CACHE_HOME/circuitpress` (when absolute), else ~/.cache/circuitpress; None where
    there is no user id to check a folder's owner against, or no home."""
    if not hasattr(os, "getuid") or not _NOFOLLOW:
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "circuitpress"


def _private(st: os.stat_result, kind: Any) -> bool:
    """Of this user, of the kind (S_ISDIR, S_ISREG), writable by no one else."""
    return bool(kind(st.st_mode)) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _open_private_dir(folder: Path, create: bool) -> int | None:
    """A descriptor of `folder`, if it is a folder (not a symlink) of this user that no one
    else can write to. Its files are opened through it: it cannot be swapped meanwhile."""
    try:
        if create:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(folder, _OPEN_DIR)
    except OSError:
        return None
    try:
        if _private(os.fstat(fd), stat.S_ISDIR):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _read_private(folder: Path, name: str) -> bytes | None:
    fd = _open_private_dir(folder, create=False)
    if fd is None:
        return None
    try:
        file = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=fd)
    except OSError:
        os.close(fd)
        return None
    try:
        if not _private(os.fstat(file), stat.S_ISREG):
            return None
        with os.fdopen(file, "rb", closefd=False) as f:
            return f.read()
    except OSError:
        return None
    finally:
        os.close(file)
        os.close(fd)


def _write_private(folder: Path, name: str, data: bytes) -> None:
    """Written under a temporary name, then renamed over `name`: a build reading it meanwhile
    sees the old file or the new one, whole. Readable and writable by this user only."""
    fd = _open_private_dir(folder, create=True)
    if fd is None:
        return
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        file = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=fd)
        try:
            with os.fdopen(file, "wb", closefd=False) as f:
                f.write(data)
        finally:
            os.close(file)
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=fd)
        except OSError:
            pass
    finally:
        os.close(fd)
