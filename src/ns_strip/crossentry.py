"""Namespace portions across the entries of one interpreter's ``sys.path``: which are importable,
and which a strip here would hide.

Stripping makes a portion PEP 420, and a PEP 420 portion is only found when no legacy
declaration of the same name wins first somewhere else on ``sys.path``:

- a setuptools ``*-nspkg.pth`` line of another site dir creates the module at start-up with a
  ``__path__`` of that site dir's directory only (Debian's python3-matplotlib does this for
  ``mpl_toolkits``); later directories are found again only if ``sys.path`` changes after
  start-up, which it does not under ``python -I``, ``PYTHONSAFEPATH`` or an embedding program;
- a pkg_resources-style ``__init__.py`` elsewhere wins the import and its ``declare_namespace``
  collects only portions that have an ``__init__.py`` of their own;
- a regular package or a module of the same name elsewhere wins the import outright.

A pkgutil-style ``__init__.py`` elsewhere is harmless: ``extend_path`` adds every directory of
the name on ``sys.path``. The model below is that worst case (no ``sys.path`` change after
start-up); a portion it calls visible imports under every way of starting Python.
Other entries are only probed (a directory, an ``__init__.py`` read through safeio, a
``.pth`` file): never walked, never executed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

from .errors import BadInputError
from .initfile import Kind, Style, classify_init
from .nspkg import is_nspkg_pth, parse_nspkg_pth
from .safeio import MAX_INIT_BYTES, MAX_TEXT_BYTES, read_regular
from .syspath import Interpreter, pth_files

INIT = "__init__.py"
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")

# How a name is present on one entry.
NAMESPACE = "namespace"  # a directory without __init__.py (a PEP 420 portion)
PKGUTIL = "pkgutil"
PKG_RESOURCES = "pkg_resources"
REGULAR = "regular"
MODULE = "module"


@dataclasses.dataclass(frozen=True)
class Presence:
    entry: str  # the sys.path entry, as the interpreter names it
    kind: str | None  # one of the kinds above; None: the name is not there
    path: str | None = None  # the directory, __init__.py or module file that makes it
    nspkg: str | None = None  # the *-nspkg.pth of this (site dir) entry that creates the name

    @property
    def has_init(self) -> bool:
        return self.kind in (PKGUTIL, PKG_RESOURCES, REGULAR)


@dataclasses.dataclass(frozen=True)
class Hider:
    """What makes a portion unimportable: a file on another entry."""

    entry: str
    path: str
    how: str  # words for the message

    def describe(self) -> str:
        return f"{self.how} {self.path}"


def visible_entries(presences: Sequence[Presence], runs_pth_imports: bool = True) -> tuple[set[str], Hider | None]:
    """The entries whose directory of the name is on the imported module's ``__path__``, and
    what decided that (None when every portion is visible)."""
    present = [p for p in presences if p.kind is not None]
    creators = [p for p in present if runs_pth_imports and p.nspkg and p.kind != MODULE]
    if creators:
        # The first line that finds the directory makes the module; every line adds its own.
        visible = {p.entry for p in creators}
        first = creators[0]
        return visible, Hider(first.entry, first.nspkg or "", "the setuptools namespace loader")
    winner = next((p for p in present if p.kind != NAMESPACE), None)
    if winner is None:
        return {p.entry for p in present}, None
    if winner.kind == PKGUTIL:
        return {p.entry for p in present if p.kind != MODULE}, None
    if winner.kind == PKG_RESOURCES:
        return {p.entry for p in present if p.has_init}, Hider(
            winner.entry, winner.path or "", "the pkg_resources-style declaration")
    what = "the module" if winner.kind == MODULE else "the regular package"
    return {winner.entry}, Hider(winner.entry, winner.path or "", what)


class EntryProber:
    """Looks up one dotted name on the entries of an interpreter, caching directory listings."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self._listings: dict[str, set[str] | None] = {}
        self._nspkg: dict[str, dict[str, str]] = {}

    def _listing(self, directory: str) -> set[str] | None:
        if directory not in self._listings:
            try:
                self._listings[directory] = set(os.listdir(directory))
            except OSError:
                self._listings[directory] = None
        return self._listings[directory]

    def nspkg_namespaces(self, site: str) -> dict[str, str]:
        """namespace -> the ``*-nspkg.pth`` of ``site`` that creates it (site dirs only)."""
        if site not in self._nspkg:
            found: dict[str, str] = {}
            if site in self.interpreter.site_dirs:
                for name in pth_files(site):
                    if not is_nspkg_pth(name):
                        continue
                    path = os.path.join(site, name)
                    try:
                        lines = parse_nspkg_pth(read_regular(path, MAX_TEXT_BYTES))
                    except BadInputError:
                        continue
                    for line in lines:
                        if line.namespace:
                            found.setdefault(line.namespace, path)
            self._nspkg[site] = found
        return self._nspkg[site]

    def probe(self, directory: str, name: str, entry: str | None = None, site: bool = True) -> Presence:
        """How ``name`` is present below ``directory`` (the entry is reported as ``entry``)."""
        shown = entry if entry is not None else directory
        parts = name.split(".")
        parent = os.path.join(directory, *parts[:-1])
        last = parts[-1]
        nspkg = self.nspkg_namespaces(directory).get(name) if site else None
        names = self._listing(parent)
        if names is None:
            return Presence(shown, None, nspkg=nspkg)
        package = os.path.join(parent, last)
        if last in names and os.path.isdir(package):
            return Presence(shown, package_kind(package, self._listing(package) or set()),
                            _package_file(package, self._listing(package) or set()), nspkg)
        module = next((n for n in sorted(names) if n.partition(".")[0] == last and "." in n
                       and n.endswith(_MODULE_SUFFIXES)), None)
        if module is not None:
            return Presence(shown, MODULE, os.path.join(parent, module), nspkg)
        return Presence(shown, None, nspkg=nspkg)

    def presences(self, name: str) -> list[Presence]:
        return [self.probe(entry, name) for entry in self.interpreter.entries]


def package_kind(directory: str, names: Iterable[str]) -> str:
    names = set(names)
    if INIT not in names:
        if any(n.startswith("__init__.") and n.endswith(_MODULE_SUFFIXES) for n in names):
            return REGULAR  # a sourceless or compiled __init__
        return NAMESPACE
    try:
        found = classify_init(read_regular(os.path.join(directory, INIT), MAX_INIT_BYTES))
    except BadInputError:
        return REGULAR  # unreadable: what it does is unknown, so it is taken to win
    if found.kind is Kind.REGULAR or found.kind is Kind.UNPARSEABLE:
        return REGULAR
    return PKG_RESOURCES if found.style is Style.PKG_RESOURCES else PKGUTIL


def _package_file(directory: str, names: set[str]) -> str:
    return os.path.join(directory, INIT) if INIT in names else directory


@dataclasses.dataclass(frozen=True)
class HiddenPortion:
    name: str
    hider: Hider


def hidden_by_strip(prober: EntryProber, tree_dir: str, tree_entry: str, name: str, init_stripped: bool,
                    nspkg_stripped: bool) -> HiddenPortion | None:
    """Whether stripping ``name`` in the tree (on disk at ``tree_dir``, on ``sys.path`` as
    ``tree_entry``) turns its visible portion into a hidden one."""
    entries = list(prober.interpreter.entries)
    index = entry_index(entries, tree_entry)
    if index is None:
        return None
    mine = prober.probe(tree_dir, name, tree_entry, site=False)
    if mine.kind is None or mine.kind == MODULE:
        return None  # nothing of the name shipped here: nothing to hide
    tree_nspkg = _nspkg_of(tree_dir, name)
    before = dataclasses.replace(mine, nspkg=tree_nspkg)
    after = dataclasses.replace(
        mine, kind=NAMESPACE if init_stripped else mine.kind,
        path=os.path.dirname(mine.path) if init_stripped and mine.path and mine.path.endswith(INIT) else mine.path,
        nspkg=None if nspkg_stripped else tree_nspkg,
    )
    others = [prober.probe(e, name) for e in entries]
    runs = prober.interpreter.runs_pth_imports
    seen_before, _ = visible_entries(others[:index] + [before] + others[index + 1:], runs)
    seen_after, hider = visible_entries(others[:index] + [after] + others[index + 1:], runs)
    if tree_entry in seen_before and tree_entry not in seen_after and hider is not None:
        return HiddenPortion(name, hider)
    return None


def entry_index(entries: Sequence[str], path: str) -> int | None:
    """Where ``path`` is on ``entries`` (compared as written, then resolved)."""
    wanted = os.path.normpath(path)
    for index, entry in enumerate(entries):
        if os.path.normpath(entry) == wanted:
            return index
    real = os.path.realpath(path)
    for index, entry in enumerate(entries):
        if entry and os.path.realpath(entry) == real:
            return index
    return None


def _nspkg_of(tree_dir: str, name: str) -> str | None:
    for pth in pth_files(tree_dir):
        if is_nspkg_pth(pth):
            try:
                lines = parse_nspkg_pth(read_regular(os.path.join(tree_dir, pth), MAX_TEXT_BYTES))
            except BadInputError:
                continue
            if any(line.namespace == name for line in lines):
                return os.path.join(tree_dir, pth)
    return None


def hidden_on_path(prober: EntryProber, name: str) -> list[tuple[Presence, Hider]]:
    """Portions of ``name`` on the interpreter's path (PEP 420 directories and legacy-declared
    packages) that a legacy declaration on another entry hides (a regular package or module
    doing so is NS501's case)."""
    presences = prober.presences(name)
    visible, hider = visible_entries(presences, prober.interpreter.runs_pth_imports)
    if hider is None or hider.how.startswith("the regular") or hider.how.startswith("the module"):
        return []
    return [(p, hider) for p in presences
            if p.kind in (NAMESPACE, PKGUTIL, PKG_RESOURCES) and p.entry not in visible]
