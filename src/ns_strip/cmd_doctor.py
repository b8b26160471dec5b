"""``ns-strip doctor``: what an interpreter's ``sys.path`` does to namespace packages.

The import system takes the first regular package or module named ``zope`` on *any* entry
of ``sys.path`` over PEP 420 portions on earlier ones, so one stray ``zope/__init__.py`` hides
every other portion; a pkgutil- or pkg_resources-style ``__init__.py`` wins too, but then
collects the other portions itself. Doctor walks the entries the way the import system does
and reports the first case, leftover ``*-nspkg.pth`` files and stale namespace bytecode,
each with what to do, plus drift in the registry.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import BadInputError
from .findings import Finding
from .initfile import classify_init
from .nspkg import is_nspkg_pth, parse_nspkg_pth
from .registry import DEFAULT_DB, Registry
from .report import Report
from .safeio import MAX_INIT_BYTES, MAX_PTH_BYTES, read_regular
from .scan import INIT, MODULE_SUFFIXES, PYCACHE

# -I: the interpreter's own installation (site dirs and their .pth files), without the
# caller's PYTHONPATH, user site dir or current directory.
_SYS_PATH_COMMAND = ("-I", "-c", "import json, sys; print(json.dumps(sys.path))")
_WAIT_SECONDS = 120


@dataclasses.dataclass(frozen=True)
class Portion:
    """One thing named like the package being imported, on one ``sys.path`` entry."""

    entry: str
    path: Path
    kind: str  # namespace (no __init__) | declared (pkgutil/pkg_resources __init__) | regular | module

    @property
    def collects_portions(self) -> bool:
        return self.kind in ("namespace", "declared")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", metavar="EXE", default=sys.executable,
                        help="the interpreter whose sys.path to check (default: the one running ns-strip)")
    parser.add_argument("--root", metavar="DIR", help="the registry to check lives in the image below DIR")
    parser.add_argument("--db", metavar="FILE", help=f"the registry database (default {DEFAULT_DB})")


def run(args: argparse.Namespace) -> Report:
    entries = interpreter_path(args.python)
    report = Report(data={"python": args.python, "sys_path": entries})
    report.findings.extend(check_sys_path(entries))
    registry = Registry(args.root, args.db)
    if registry.db.exists():
        report.findings.extend(registry.verify())
        report.findings.extend(registry.findings)
        report.data["registry"] = str(registry.db)
    else:
        report.note(f"No registry at {registry.db}; registry drift not checked")
        report.data["registry"] = None
    if not report.findings:
        report.note(f"No namespace problems on the sys.path of {args.python}")
    return report


def interpreter_path(python: str) -> list[str]:
    try:
        done = subprocess.run([python, *_SYS_PATH_COMMAND], capture_output=True, text=True, timeout=_WAIT_SECONDS,
                              check=False)
    except OSError as exc:
        raise BadInputError(f"cannot run it: {exc.strerror or exc}", python) from exc
    except subprocess.TimeoutExpired as exc:
        raise BadInputError(f"did not print its sys.path within {_WAIT_SECONDS} s", python) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BadInputError(f"exited with status {done.returncode} when asked for its sys.path: {last}", python)
    try:
        entries = json.loads(done.stdout)
    except ValueError as exc:
        raise BadInputError(f"printed something other than its sys.path ({exc})", python) from exc
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise BadInputError("printed something other than its sys.path", python)
    return entries


def check_sys_path(entries: list[str]) -> list[Finding]:
    places = []
    seen = set()
    for entry in entries:
        real = os.path.realpath(entry) if entry else ""
        if entry and os.path.isdir(entry) and real not in seen:  # zip files hold no stray files
            seen.add(real)
            places.append((entry, Path(entry)))
    findings = list(_nspkg_findings(places))
    findings.extend(_check_level("", places))
    return findings


def _nspkg_findings(places: list[tuple[str, Path]]) -> Iterator[Finding]:
    for entry, directory in places:
        for name in sorted(_names(directory)):
            if not is_nspkg_pth(name):
                continue
            try:
                lines = parse_nspkg_pth(read_regular(directory / name, MAX_PTH_BYTES))
            except (OSError, BadInputError):
                lines = []
            namespaces = ", ".join(line.namespace for line in lines if line.namespace) or "an unreadable namespace"
            yield Finding(
                "NS502", str(directory / name),
                f"setuptools namespace loader for {namespaces}, not needed since Python 3.3 and run at every "
                f"start; remove it with 'ns-strip strip {entry}', or rebuild the package that ships it",
                details={"site": entry},
            )


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _check_level(prefix: str, places: list[tuple[str, Path]]) -> Iterator[Finding]:
    """Check the children of one package level spread over ``places``, in sys.path order, and
    the levels below them: depth first, with an explicit stack (a tree may be thousands deep)."""
    pending: list[tuple[str, Any]] = [("level", (prefix, places))]
    while pending:
        what, item = pending.pop()
        if what == "child":
            dotted, portions = item
            yield from _stale_bytecode(dotted, portions)
            winner = next((p for p in portions if p.kind != "namespace"), None)
            if winner is not None and not winner.collects_portions:
                hidden = [p for p in portions if p is not winner and p.collects_portions]
                yield _hiding(dotted, winner, hidden)
            else:
                pending.append(("level", (dotted, [(p.entry, p.path) for p in portions if p.collects_portions])))
            continue
        prefix, places = item
        children: dict[str, list[Portion]] = {}
        for entry, directory in places:
            for name in sorted(_names(directory)):
                portion = _portion(entry, directory / name, name)
                if portion is not None:
                    children.setdefault(portion.path.name.partition(".")[0], []).append(portion)
        level = []
        for name, portions in sorted(children.items()):
            if not any(p.kind == "namespace" or p.kind == "declared" for p in portions):
                continue  # no namespace here: shadowing between regular packages is not doctor's business
            level.append(("child", (f"{prefix}.{name}" if prefix else name, portions)))
        pending.extend(reversed(level))


def _portion(entry: str, path: Path, name: str) -> Portion | None:
    if path.is_dir():
        if name == PYCACHE or not name.isidentifier():
            return None
        kind = _package_kind(path)
        return Portion(entry, path, kind) if kind else None
    stem, dot, _ = name.partition(".")
    if dot and stem.isidentifier() and name.endswith(MODULE_SUFFIXES) and stem != "__init__":
        return Portion(entry, path, "module")
    return None


def _package_kind(directory: Path) -> str | None:
    names = _names(directory)
    if INIT in names:
        try:
            found = classify_init(read_regular(directory / INIT, MAX_INIT_BYTES))
        except (OSError, BadInputError):  # unreadable, too large, a link, a FIFO: not read
            return "regular"
        return "declared" if found.is_namespace else "regular"
    if any(n.startswith("__init__.") and n.endswith(MODULE_SUFFIXES) for n in names):
        return "regular"  # a sourceless __init__.pyc or an extension __init__ makes a regular package
    return "namespace" if _holds_python(directory) else None


def _holds_python(directory: Path) -> bool:
    # An explicit stack: os.walk recurses (before Python 3.12), and a tree may be thousands deep.
    pending = [os.fspath(directory)]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.name.endswith(MODULE_SUFFIXES) and not entry.is_dir(follow_symlinks=False):
                        return True
                    if (entry.is_dir(follow_symlinks=False) and entry.name != PYCACHE
                            and entry.name.isidentifier()):
                        pending.append(entry.path)
        except OSError:
            continue
    return False


def _hiding(dotted: str, winner: Portion, hidden: list[Portion]) -> Finding:
    others = ", ".join(str(p.path) for p in hidden)
    if winner.kind == "module":
        what, fix = f"the module {winner.path}", "rename or remove that module, or the package that ships it"
    else:
        what = f"the regular package {winner.path}"
        fix = (f"make it a portion: remove its {INIT} if it only held the namespace ('ns-strip strip "
               f"{winner.entry}' does that for legacy declarations), or remove the package that ships it")
    return Finding(
        "NS501", str(winner.path),
        f"{dotted}: {what} hides the namespace portions {others}, which cannot be imported; {fix}",
        details={"site": winner.entry, "namespace": dotted, "hidden": [str(p.path) for p in hidden]},
    )


def _stale_bytecode(dotted: str, portions: list[Portion]) -> Iterator[Finding]:
    for portion in portions:
        if portion.kind != "namespace":
            continue
        pycache = portion.path / PYCACHE
        stale = sorted(n for n in _names(pycache) if n.startswith("__init__.") and n.endswith(".pyc"))
        if stale:
            yield Finding(
                "NS503", str(pycache),
                f"{dotted}: bytecode of an {INIT} that no longer exists ({', '.join(stale)}); delete it "
                f"(and {PYCACHE} if that empties it) so the directory can go with its last package",
                details={"site": portion.entry, "namespace": dotted, "files": stale},
            )
