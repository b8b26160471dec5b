"""``strip --check-imports``: the stripped tree must still import what it imported before.

This runs the package's own code, which is why it is opt-in. In a subprocess of the target
interpreter (``-I -S -B``: no environment variables, no user site, no current directory, no
bytecode written into the tree; ``site`` is then driven by hand), each site dir of that interpreter is added with
``site.addsitedir`` in its order, so every ``.pth`` file runs as it would at start-up, with
the tree in its place (a staged tree goes just before the system dir it is for, a tree not on
the path goes first). Then every top-level name and every namespace portion the tree's
distributions ship is imported with ``importlib.import_module``, one after the other; each
failure is recorded, never raised. The child runs from an empty temporary directory with
stdin closed and its output discarded, in a session of its own that is killed at the end or
when the time limit is reached.

It runs twice: on the tree as it is, and on a *view* of the stripped tree, a private
temporary directory of symbolic links to the tree's files in which the files strip removes
are missing and the RECORDs it rewrites hold their new contents. Both runs happen before
anything changes: a module that imported before and fails in the view stops the strip
(NS135, exit 4) with nothing changed. A module that failed before (a missing dependency in a
build root) is not held against the strip.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .distributions import Distribution
from .errors import BadInputError
from .findings import Finding
from .importnames import bare_name, compute_layout
from .initfile import classify_init
from .sources import Source, TreeSource, join
from .syspath import Interpreter

# Per run; a maintainer whose packages import slowly (or a test) sets NS_STRIP_CHECK_IMPORTS_TIMEOUT.
TIMEOUT_ENV = "NS_STRIP_CHECK_IMPORTS_TIMEOUT"
WAIT_SECONDS = 600


def wait_seconds() -> float:
    value = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(value)
    except ValueError:
        return WAIT_SECONDS
    return seconds if 0 < seconds <= 86400 else WAIT_SECONDS
_MAX_RESULTS = 16 << 20

_CHILD = r"""
import importlib, json, site, sys
sites, names, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
for directory in sites:
    site.addsitedir(directory)
with open(out, "w", encoding="utf-8") as results:
    for name in names:
        results.write(json.dumps([name, None]) + "\n")  # started: a hang is seen as this line alone
        results.flush()
        try:
            importlib.import_module(name)
            error = ""
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included: it is their code
            error = (type(exc).__name__ + ": " + str(exc))[:500]
        results.write(json.dumps([name, error]) + "\n")
        results.flush()
"""


@dataclasses.dataclass(frozen=True)
class ImportResult:
    ok: dict[str, bool]  # name -> imported
    errors: dict[str, str]  # name -> the error, for the names that failed


def names_to_import(source: Source, distributions: Iterable[Distribution]) -> list[str]:
    """Every top-level name and namespace portion the distributions ship, namespaces first."""
    namespaces: set[str] = set()
    names: set[str] = set()
    for dist in distributions:
        layout = compute_layout(source, dist)
        namespaces.update(entry.name for entry in layout.namespaces)
        names.update(bare_name(value) for value in layout.import_names)
    if not namespaces and not names:
        names = _top_level_names(source)  # a tree without metadata: what its top level holds
    wanted = sorted(namespaces) + sorted(names - namespaces)
    return [name for name in wanted if all(part.isidentifier() for part in name.split("."))]


def _top_level_names(source: Source, directory: str = "", prefix: str = "") -> set[str]:
    """Packages and modules of a tree without metadata, and those of its namespaces' portions."""
    listing = source.dirs.get(directory)
    if listing is None:
        return set()
    found = set()
    for filename in listing.files:
        stem = filename.partition(".")[0]
        if filename.endswith((".py", ".so", ".pyd")) and stem.isidentifier() and stem != "__init__":
            found.add(prefix + stem)
    for sub in listing.subdirs:
        if not sub.isidentifier() or sub == "__pycache__":
            continue
        found.add(prefix + sub)
        path = join(directory, sub)
        if _is_namespace(source, path):
            found |= _top_level_names(source, path, f"{prefix}{sub}.")
    return found


def _is_namespace(source: Source, directory: str) -> bool:
    listing = source.dirs.get(directory)
    if listing is None or "__init__.py" not in listing.files:
        return True
    try:
        return classify_init(source.read_bytes(join(directory, "__init__.py"))).is_namespace
    except BadInputError:
        return False


def site_dirs_with(interpreter: Interpreter, tree_entry: str, on_disk: str, staged: bool) -> list[str]:
    """The interpreter's site dirs with the tree (``on_disk``) in its place: instead of the entry
    it is, or (``staged`` under a DESTDIR) just before the installed dir it is for."""
    sites = list(interpreter.site_dirs)
    wanted = os.path.normpath(tree_entry)
    for index, site in enumerate(sites):
        if os.path.normpath(site) == wanted:
            if staged:
                sites.insert(index, on_disk)
            else:
                sites[index] = on_disk
            return sites
    return [on_disk, *sites]


def run_imports(interpreter: Interpreter, sites: Sequence[str], names: Sequence[str]) -> ImportResult:
    """Import ``names`` in a child of the interpreter with ``sites`` added in order.

    The child gets a session of its own, and the whole session is killed when it is done or
    out of time, so nothing an import started outlives the check. Its output is discarded
    (a package may print without end); what matters is recorded by the child in a file.
    """
    with tempfile.TemporaryDirectory(prefix="ns-strip-imports-") as scratch:
        out = os.path.join(scratch, "results.jsonl")
        cwd = os.path.join(scratch, "cwd")
        os.mkdir(cwd)
        timed_out = False
        try:
            child = subprocess.Popen(
                [interpreter.executable, "-I", "-S", "-B", "-c", _CHILD, json.dumps(list(sites)),
                 json.dumps(list(names)), out],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise BadInputError(f"cannot run it: {exc.strerror or exc}", interpreter.executable) from exc
        limit = wait_seconds()
        try:
            child.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except OSError:
                pass  # the session is gone already
            child.wait()
        ok: dict[str, bool] = {}
        errors: dict[str, str] = {}
        for name, error in _results(out):
            if error is None:
                ok[name] = False
                errors[name] = (f"did not finish importing within {limit:g} s" if timed_out
                                else "the interpreter died while importing it")
            else:
                ok[name] = not error
                if error:
                    errors[name] = error
                else:
                    errors.pop(name, None)
        for name in names:
            if name not in ok:
                ok[name] = False
                errors[name] = "not reached (an earlier import ended the interpreter)"
        return ImportResult(ok, errors)


def _results(path: str) -> list[tuple[str, str | None]]:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_RESULTS)
    except OSError:
        return []
    found = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            name, error = json.loads(line)
        except (ValueError, TypeError):
            continue
        if isinstance(name, str) and (error is None or isinstance(error, str)):
            found.append((name, error))
    return found


def build_view(tree: Path, view: Path, removed: Iterable[str], rewrites: Mapping[str, bytes],
               emptied: Iterable[str]) -> None:
    """``view``: the tree as the strip leaves it, as symbolic links to the tree's own files."""
    removed = set(removed)
    changed = removed | set(rewrites)
    mirrored = {""}
    for path in changed:
        parts = path.split("/")[:-1]
        mirrored.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))

    def fill(rel: str) -> None:
        real = tree / rel if rel else tree
        target = view / rel if rel else view
        for name in sorted(os.listdir(real)):
            child = join(rel, name)
            if child in removed:
                continue
            if child in rewrites:
                (target / name).write_bytes(rewrites[child])
            elif child in mirrored and (real / name).is_dir() and not (real / name).is_symlink():
                (target / name).mkdir()
                fill(child)
            else:
                (target / name).symlink_to(real / name)

    fill("")
    for directory in sorted(emptied, key=lambda d: -d.count("/")):
        try:
            os.rmdir(view / directory)
        except OSError:
            pass


@dataclasses.dataclass(frozen=True)
class Regression:
    name: str
    error: str


def check_strip(interpreter: Interpreter, source: TreeSource, tree_entry: str, distributions: Sequence[Distribution],
                removed: Sequence[str], rewrites: Mapping[str, bytes], emptied: Sequence[str]) -> tuple[
                    list[str], list[Regression]]:
    """Import before and in the view of the stripped tree; the names checked and what broke."""
    names = names_to_import(source, distributions)
    if not names:
        return [], []
    tree = Path(os.path.abspath(source.site_dir))
    staged = source.root is not None
    try:
        before = run_imports(interpreter, site_dirs_with(interpreter, tree_entry, str(tree), staged), names)
        view_root = Path(tempfile.mkdtemp(prefix="ns-strip-view-"))
        try:
            view = view_root / "site"
            view.mkdir()
            build_view(tree, view, removed, rewrites, emptied)
            after = run_imports(interpreter, site_dirs_with(interpreter, tree_entry, str(view), staged), names)
        finally:
            shutil.rmtree(view_root, ignore_errors=True)
    except OSError as exc:  # the tree changed under us, or no room for the view: nothing was changed
        raise BadInputError(f"cannot check imports: {exc.strerror or exc}; nothing was changed",
                            exc.filename or str(tree)) from exc
    broken = [Regression(name, after.errors.get(name, "failed")) for name in names
              if before.ok.get(name) and not after.ok.get(name)]
    return names, broken


def regression_finding(regression: Regression, interpreter: Interpreter) -> Finding:
    return Finding("NS135", regression.name.replace(".", "/"),
                   f"import {regression.name} worked before the strip and fails after it with "
                   f"{interpreter.executable}: {regression.error}",
                   details={"module": regression.name, "error": regression.error,
                            "python": interpreter.executable})
