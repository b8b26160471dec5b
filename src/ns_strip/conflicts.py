"""Conflicts between distributions that are to be installed together (``ns-strip check``).

The distributions come from any mix of wheels and site dirs (several dist-infos each). Checks:

- NS301/NS302: a path shipped by two distributions, with different or identical content. The
  content is compared by the sha256 RECORD gives (a wheel's RECORD is validated against its
  members); within one site dir the file on disk is whichever was installed last, so the
  RECORDs are what can still tell the two apart. Bytecode in ``__pycache__`` follows its
  source and is not compared, nor is anything in a distribution's own metadata directory.
- NS303: a regular package or module of one distribution at a name that is a namespace of
  another: the regular package wins the import, the other's portions are shadowed.
- NS202: the same for a compiled extension module (the Nuitka case: a namespace compiled to
  ``shared_ns.cpython-39-darwin.so`` hides every other portion of ``shared_ns``).
- NS304: PEP 794 overlaps, when at least one of the two declares Import-Name/Import-Namespace
  (a distribution that declares nothing speaks through its contents). A distribution claims a
  name exclusively when it lists it as Import-Name, and claims everything below it too, except
  below a name it lists as Import-Namespace; another distribution listing a name (of either
  kind) at or below an exclusive claim conflicts with it. Two Import-Namespace entries never
  conflict.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence

from installer.records import parse_record_file
from packaging.utils import canonicalize_name

from .distributions import Distribution, load_distributions
from .errors import BadInputError
from .findings import Finding
from .importnames import ImportEntry, ImportLayout, compute_layout, is_mypyc_group
from .initfile import Kind, classify_init_at
from .metadata_edit import record_hash
from .scan import INIT, PYCACHE
from .sources import Source


@dataclasses.dataclass
class Installed:
    """One distribution, from one of the checked paths."""

    label: str  # the PATH it came from
    source: Source
    distribution: Distribution
    layout: ImportLayout

    @property
    def name(self) -> str:
        return self.distribution.name

    @property
    def key(self) -> str:
        return canonicalize_name(self.distribution.name)

    @functools.cached_property
    def _recorded_sha256(self) -> dict[str, str]:
        hashes = {}
        for line in self.distribution.record_lines:
            if line.path is not None:
                _, hash_, _ = next(parse_record_file([line.text.rstrip("\r\n")]))
                if hash_.startswith("sha256="):
                    hashes[line.path] = hash_
        return hashes

    def digest(self, path: str) -> str:
        """sha256 of the file as this distribution installs it (from RECORD when it says)."""
        if path in self._recorded_sha256:
            return self._recorded_sha256[path]
        try:
            return record_hash(self.source.read_bytes(path))
        except BadInputError:
            return f"unreadable:{self.label}:{path}"


def load(sources: Sequence[tuple[str, Source]]) -> list[Installed]:
    return [
        Installed(label, source, dist, compute_layout(source, dist))
        for label, source in sources
        for dist in load_distributions(source)
    ]


def check(installed: Sequence[Installed]) -> list[Finding]:
    findings = _shared_paths(installed)
    for first, second in itertools.combinations(installed, 2):
        if first.key == second.key:
            continue  # one project found twice (a wheel and its installed copy): not a conflict
        for one, other in ((first, second), (second, first)):
            findings.extend(_shadowing(one, other))
            findings.extend(_declared_overlaps(one, other))
    return sorted(findings, key=lambda f: (f.code, f.path, f.distributions))


def _compared_paths(item: Installed) -> Iterable[str]:
    metadata = item.distribution.metadata_dir + "/"
    for path in item.distribution.files:
        if path.startswith(metadata) or PYCACHE in path.split("/"):
            continue
        yield path


def _shared_paths(installed: Sequence[Installed]) -> list[Finding]:
    by_path: dict[str, list[Installed]] = defaultdict(list)
    for item in installed:
        for path in _compared_paths(item):
            if not any(other.key == item.key for other in by_path[path]):
                by_path[path].append(item)
    findings = []
    for path, owners in sorted(by_path.items()):
        if len(owners) < 2:
            continue
        digests = {item.name: item.digest(path) for item in owners}
        names = tuple(item.name for item in owners)
        details = {"sources": {item.name: item.label for item in owners}, "digests": digests}
        hint = " (legacy namespace declarations: 'ns-strip strip' removes them)" if _all_namespace_inits(
            path, owners) else ""
        if len(set(digests.values())) == 1:
            message = f"shipped identically by {_and(names)}{hint}"
            findings.append(Finding("NS302", path, message, names, details))
        else:
            message = f"shipped by {_and(names)} with different content: installing both overwrites one{hint}"
            findings.append(Finding("NS301", path, message, names, details))
    return findings


def _all_namespace_inits(path: str, owners: Sequence[Installed]) -> bool:
    if path.rpartition("/")[2] != INIT:
        return False
    kinds = set()
    for item in owners:
        try:
            kinds.add(classify_init_at(item.source, path).kind)
        except BadInputError:
            return False
    return kinds == {Kind.PURE}


def _shadowing(one: Installed, other: Installed) -> list[Finding]:
    """NS303/NS202: a name ``one`` ships as a regular package, module or extension while
    ``other`` ships a namespace there."""
    namespaces = {entry.name for entry in other.layout.namespaces}
    carved_out = one.layout.effective()[1]
    findings = []
    for entry in one.layout.names:
        if entry.name not in namespaces or entry.kind == "hybrid":
            continue  # a hybrid __init__.py extends __path__: the other's portions still import
        portions = [e.name for e in other.layout.names if e.name.startswith(entry.name + ".")]
        if portions and all(_at_or_below(portion, carved_out) for portion in portions):
            continue  # every portion lies in a namespace the package leaves open (PEP 794)
        pair = (one.name, other.name)
        details = {"name": entry.name, "sources": {one.name: one.label, other.name: other.label}}
        if entry.kind == "extension":
            message = (f"extension module {entry.name} of {one.name} takes over namespace {entry.name} of "
                       f"{other.name}: the portions {other.name} ships cannot be imported")
            findings.append(Finding("NS202", entry.path, message, pair, details))
        else:
            message = (f"{_kind_text(entry)} {entry.name} of {one.name} shadows the namespace portions "
                       f"{other.name} ships under {entry.name.replace('.', '/')}/")
            findings.append(Finding("NS303", entry.path, message, pair, details))
    return findings


def _at_or_below(name: str, parents: Iterable[str]) -> bool:
    return any(name == parent or name.startswith(parent + ".") for parent in parents)


def _kind_text(entry: ImportEntry) -> str:
    return {"package": "regular package", "module": "module"}.get(entry.kind, entry.kind)


def exclusive_claim(names: set[str], namespaces: set[str], location: str) -> str | None:
    """The Import-Name by which a distribution claims ``location`` for itself alone, or None.

    The deepest entry at or above ``location`` decides: an Import-Name claims it (at its own
    level even when it is also a namespace), an Import-Namespace leaves it open.
    """
    above = [entry for entry in names | namespaces if _at_or_below(location, [entry])]
    deepest = max(above, key=len, default=None)
    if deepest is None or deepest not in names:
        return None
    if location == deepest or deepest not in namespaces:
        return deepest
    return None


def _declared_overlaps(one: Installed, other: Installed) -> list[Finding]:
    """NS304: entries of ``other`` that fall under an exclusive claim of ``one``."""
    if not (one.layout.declares or other.layout.declares):
        return []
    names, namespaces = one.layout.effective()
    other_names, other_namespaces = other.layout.effective()
    findings = []
    for location in sorted(other_names | other_namespaces):
        if is_mypyc_group(location):
            continue  # a compiled project's private group library: not a name anyone shares
        claim = exclusive_claim(names, namespaces, location)
        if claim is None:
            continue
        kind = "Name" if location in other_names else "Namespace"
        if claim == location and kind == "Name" and one.key > other.key:
            continue  # both list the same Import-Name: reported once, from the other side
        path = one.layout.metadata_path or one.distribution.metadata_dir
        message = (f"{one.name} claims {claim} as Import-Name, and {other.name} lists {location} as "
                   f"Import-{kind}: they conflict when installed together")
        findings.append(Finding("NS304", path, message, (one.name, other.name), {
            "name": location, "claim": claim, "overlap": f"Name/{kind}",
            "declared": {one.name: one.layout.declares, other.name: other.layout.declares},
        }))
    return findings


def _and(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
