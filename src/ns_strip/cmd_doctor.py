"""``ns-strip doctor``: what an interpreter's ``sys.path`` does to namespace packages.

The import system takes the first regular package or module named ``zope`` on *any* entry
of ``sys.path`` over PEP 420 portions on earlier ones, so one stray ``zope/__init__.py`` hides
every other portion; a pkgutil-style ``__init__.py`` wins too, but then collects the other
portions itself (a pkg_resources-style one collects only those with an ``__init__.py``, and a
``*-nspkg.pth`` line decides ``__path__`` at start-up: NS504, from :mod:`crossentry`). Doctor
walks the entries the way the import system does and reports those cases, leftover
``*-nspkg.pth`` files, stale namespace bytecode and every ``.pth`` file's fate under PEP 829,
each with what to do, plus drift in the registry. The interpreter's ``sys.path`` comes from
:mod:`syspath`: no ``.pth`` file is executed to find it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import pthaudit, syspath
from .crossentry import PKG_RESOURCES, EntryProber, hidden_on_path, package_kind
from .errors import BadInputError
from .findings import Finding
from .initfile import classify_init
from .nspkg import is_nspkg_pth, parse_nspkg_pth
from .registry import DEFAULT_DB, Registry
from .report import Report
from .safeio import MAX_INIT_BYTES, MAX_PTH_BYTES, read_regular
from .scan import INIT, MODULE_SUFFIXES, PYCACHE


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
                        help="the interpreter whose sys.path to check (default: the one running ns-strip); "
                             "it runs with -I -S, and no .pth file of its site dirs is executed")
    parser.add_argument("--root", metavar="DIR", help="the registry to check lives in the image below DIR")
    parser.add_argument("--db", metavar="FILE", help=f"the registry database (default {DEFAULT_DB})")


def run(args: argparse.Namespace) -> Report:
    interpreter = syspath.query(args.python, "given with --python" if args.python != sys.executable else
                                "the interpreter running ns-strip")
    entries = list(interpreter.entries)
    report = Report(data={"python": args.python, "sys_path": entries,
                          "python_version": ".".join(map(str, interpreter.version))})
    report.findings.extend(check_sys_path(entries))
    report.findings.extend(hidden_portions(interpreter))
    for site in interpreter.site_dirs:
        report.findings.extend(pthaudit.audit_directory(site, interpreter.version))
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


def hidden_portions(interpreter: syspath.Interpreter) -> list[Finding]:
    """NS504: PEP 420 portions that a *-nspkg.pth line or a pkg_resources-style __init__.py on
    another entry hides (the names any site dir's *-nspkg.pth creates, and every top-level name
    with a legacy __init__.py)."""
    prober = EntryProber(interpreter)
    names: set[str] = set()
    for site in interpreter.site_dirs:
        names.update(prober.nspkg_namespaces(site))
    for entry in interpreter.entries:
        for name in _names(Path(entry)):
            directory = os.path.join(entry, name)
            if name.isidentifier() and os.path.isfile(os.path.join(directory, INIT)):
                if package_kind(directory, [INIT]) == PKG_RESOURCES:
                    names.add(name)
    findings = []
    for name in sorted(names):
        for presence, hider in hidden_on_path(prober, name):
            findings.append(Finding(
                "NS504", presence.path or presence.entry,
                f"{name}: this portion cannot be imported: {hider.describe()} on {hider.entry} "
                "decides the namespace's __path__ and leaves it out (under python -I, PYTHONSAFEPATH or an "
                "embedding program always); remove that legacy declaration ('ns-strip strip "
                f"{hider.entry}', or rebuild the package that ships it)",
                details={"site": presence.entry, "namespace": name, "hidden_by": hider.path,
                         "entry": hider.entry},
            ))
    return findings


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
                hidden = [p for p in portions if p is not winner and p.collects_portions
                          and not _adds_nothing(p, winner)]
                if hidden:
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


def _module_files(directory: Path) -> Iterator[Path]:
    """Module files below a directory, relative to it (bytecode caches skipped)."""
    for base, subdirs, files in os.walk(directory):
        subdirs[:] = [d for d in subdirs if d != PYCACHE and d.isidentifier()]
        for name in files:
            if name.endswith(MODULE_SUFFIXES):
                yield Path(base, name).relative_to(directory)


def _adds_nothing(portion: Portion, winner: Portion) -> bool:
    """A directory without ``__init__.py`` beside a regular package of the same name whose
    every module the package already has (Debian's python3.11/dist-packages/numpy holding a
    copy of one of numpy's extensions) is not a portion anyone misses: nothing is hidden."""
    if portion.kind != "namespace" or winner.kind != "regular":
        return False
    return all((winner.path / relative).exists() for relative in _module_files(portion.path))


def _hiding(dotted: str, winner: Portion, hidden: list[Portion]) -> Finding:
    others = ", ".join(str(p.path) for p in hidden)
    if winner.kind == "module":
        what, fix = f"the module {winner.path}", "rename or remove that module, or the package that ships it"
    else:
        # Never advise deleting a regular package's __init__.py: the package needs it.
        what = f"the regular package {winner.path}"
        fix = ("move those modules into that package or rename them, or remove the package that ships "
               "the hidden files")
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
