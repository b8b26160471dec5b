"""``ns-strip archive report``: conflicts and a census across an index.

Which distributions take part: by default the newest release of each project (PEP 503 name;
versions compared by PEP 440, an unparseable one oldest), one artifact for it (a wheel before
a ``.deb`` before an sdist, then by file name); with ``all_releases`` every distribution of
every artifact. Conflicts are only ever between different projects.

The checks are those of ``ns-strip check`` (``conflicts``), with the same codes and meaning, but
computed from the index by grouping (each one linear in the index, not pairwise over
projects): NS301/NS302 a path shipped by several projects with different/identical sha256;
NS303/NS202 a regular package, module or extension of one project at a name other projects
use as a namespace (one finding per name and project, naming the others); NS304 PEP 794
overlaps where at least one side declares (``conflicts.exclusive_claim`` decides); NS603 a
namespace whose portions mix legacy and PEP 420 styles; NS601 every refused artifact.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import json
from typing import Any

from ..conflicts import exclusive_claim
from ..findings import Finding
from .store import IndexStore

KIND_ORDER = {"wheel": 0, "deb": 1, "sdist": 2}
LEGACY_STYLES = ("pkgutil", "pkg_resources", "nspkg_pth", "declared_only")
NAMESPACE_STYLES = ("pep420", *LEGACY_STYLES)
EXTENSION_CODES = ("NS201", "NS202", "NS203", "NS204", "NS205")


@dataclasses.dataclass(frozen=True)
class Selected:
    artifact_id: int
    name: str  # the distribution's name as written
    project: str
    version: str
    filename: str
    import_names: tuple[str, ...]
    import_namespaces: tuple[str, ...]
    declared_names: tuple[str, ...] | None
    declared_namespaces: tuple[str, ...] | None

    @property
    def declares(self) -> bool:
        return self.declared_names is not None or self.declared_namespaces is not None

    def effective(self) -> tuple[set[str], set[str]]:
        if self.declares:
            return set(self.declared_names or ()), set(self.declared_namespaces or ())
        return set(self.import_names), set(self.import_namespaces)


def _version_key(version: str) -> tuple:
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _bare(values: Any) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(sorted({value.partition(";")[0].strip() for value in values if value.partition(";")[0].strip()}))


def select(store: IndexStore, all_releases: bool = False) -> list[Selected]:
    rows = store.db.execute(
        "SELECT d.artifact_id, d.name, d.project, d.version, a.filename, a.kind, d.import_names, "
        "d.import_namespaces, d.declared_import_names, d.declared_import_namespaces "
        "FROM distributions d JOIN artifacts a ON a.id = d.artifact_id WHERE a.status = 'indexed'"
    ).fetchall()
    candidates = [
        (Selected(row[0], row[1], row[2], row[3], row[4], _bare(json.loads(row[6])) or (),
                  _bare(json.loads(row[7])) or (), _bare(json.loads(row[8])), _bare(json.loads(row[9]))), row[5])
        for row in rows
    ]
    if all_releases:
        return sorted((c for c, _ in candidates), key=lambda s: (s.project, _version_key(s.version), s.filename))
    by_project: dict[str, list[tuple[Selected, str]]] = collections.defaultdict(list)
    for candidate, kind in candidates:
        by_project[candidate.project].append((candidate, kind))
    chosen = []
    for project in sorted(by_project):
        offered = by_project[project]
        newest = max(_version_key(c.version) for c, _ in offered)
        offered = [(c, kind) for c, kind in offered if _version_key(c.version) == newest]
        chosen.append(min(offered, key=lambda item: (KIND_ORDER.get(item[1], 9), item[0].filename, item[0].name))[0])
    return chosen


def _selected_table(store: IndexStore, selected: list[Selected]) -> None:
    store.db.execute("DROP TABLE IF EXISTS temp.selected")
    store.db.execute("CREATE TEMP TABLE selected(artifact_id INTEGER, name TEXT, project TEXT)")
    store.db.executemany("INSERT INTO temp.selected VALUES (?, ?, ?)",
                         ((s.artifact_id, s.name, s.project) for s in selected))
    store.db.execute("CREATE INDEX temp.selected_key ON selected(artifact_id, name)")


def report(store: IndexStore, all_releases: bool = False) -> dict[str, Any]:
    """Findings and census of the index (see the module docstring), as plain data."""
    selected = select(store, all_releases)
    _selected_table(store, selected)
    findings: list[Finding] = []
    findings += _shared_paths(store)
    findings += _shadowing(store, selected)
    findings += _declared_overlaps(selected)
    mixed = _mixed_namespaces(store)
    findings += [Finding("NS603", name, f"namespace {name}: {len(legacy)} project(s) ship legacy portions "
                         f"({', '.join(sorted({s for styles in legacy.values() for s in styles}))}), "
                         f"{len(pep420)} PEP 420 ones: a partial transition",
                         tuple(sorted(legacy) + sorted(pep420))[:20],
                         {"legacy": sorted(legacy), "pep420": sorted(pep420)})
                 for name, (legacy, pep420) in sorted(mixed.items())]
    refused = store.db.execute("SELECT filename, reason FROM artifacts WHERE status='refused' ORDER BY filename")
    findings += [Finding("NS601", filename, reason or "refused") for filename, reason in refused]
    findings.sort(key=lambda f: (f.code, f.path, f.distributions))
    return {
        "selection": "all releases" if all_releases else "newest release of each project",
        "census": _census(store, selected, mixed),
        "findings": findings,
    }


def _is_compared(path: str) -> bool:
    first = path.split("/")[0]
    return not (first.endswith((".dist-info", ".egg-info", ".data")) or path.startswith("../")
                or "__pycache__" in path.split("/"))


def _shared_paths(store: IndexStore) -> list[Finding]:
    rows = store.db.execute(
        "SELECT f.path, s.project, s.name, f.hash FROM files f JOIN temp.selected s "
        "ON f.artifact_id = s.artifact_id AND f.distribution = s.name "
        "WHERE f.path IN (SELECT f2.path FROM files f2 JOIN temp.selected s2 "
        "ON f2.artifact_id = s2.artifact_id AND f2.distribution = s2.name "
        "GROUP BY f2.path HAVING count(DISTINCT s2.project) > 1) ORDER BY f.path, s.project"
    )
    by_path: dict[str, dict[str, tuple[str, str | None]]] = collections.defaultdict(dict)
    for path, project, name, hash_ in rows:
        if _is_compared(path):
            by_path[path].setdefault(project, (name, hash_))
    legacy = {path for (path,) in store.db.execute(
        "SELECT DISTINCT l.path FROM legacy_files l JOIN temp.selected s ON l.artifact_id = s.artifact_id "
        "WHERE l.kind = 'init'")}
    findings = []
    for path, owners in by_path.items():
        names = tuple(name for name, _ in owners.values())
        digests = {name: hash_ for name, hash_ in owners.values()}
        hint = " (legacy namespace declarations: 'ns-strip strip' removes them)" if path in legacy else ""
        shown = _and(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        if len(set(digests.values())) == 1 and None not in digests.values():
            findings.append(Finding("NS302", path, f"shipped identically by {shown}{hint}", names,
                                    {"digests": digests}))
        else:
            findings.append(Finding("NS301", path, f"shipped by {shown} with different content: installing "
                                    f"them together overwrites one{hint}", names, {"digests": digests}))
    return findings


def _shadowing(store: IndexStore, selected: list[Selected]) -> list[Finding]:
    """NS303/NS202: a regular name of one project that other projects use as a namespace."""
    namespace_users: dict[str, list[Selected]] = collections.defaultdict(list)
    for item in selected:
        for name in item.import_namespaces:
            namespace_users[name].append(item)
    if not namespace_users:
        return []
    kinds: dict[tuple[int, str], dict[str, str]] = collections.defaultdict(dict)
    for artifact_id, dist, name, kind in store.db.execute(
            "SELECT i.artifact_id, i.distribution, i.name, i.kind FROM import_names i JOIN temp.selected s "
            "ON i.artifact_id = s.artifact_id AND i.distribution = s.name WHERE i.origin = 'computed'"):
        kinds[(artifact_id, dist)][name] = kind
    findings = []
    for item in selected:
        carved_out = item.effective()[1]
        for name in item.import_names:
            users = [other for other in namespace_users.get(name, ()) if other.project != item.project]
            kind = kinds[(item.artifact_id, item.name)].get(name, "package")
            if not users or kind == "hybrid":
                continue
            shadowed = []
            for other in users:
                portions = [n for n in other.import_names if n.startswith(name + ".")]
                if portions and all(any(p == c or p.startswith(c + ".") for c in carved_out) for p in portions):
                    continue
                shadowed.append(other.name)
            if not shadowed:
                continue
            shown = _and(shadowed[:5]) + (f" and {len(shadowed) - 5} more" if len(shadowed) > 5 else "")
            details = {"name": name, "namespace_users": shadowed}
            if kind == "extension":
                findings.append(Finding("NS202", name, f"extension module {name} of {item.name} takes over "
                                        f"namespace {name} of {shown}", (item.name, *shadowed), details))
            else:
                text = {"package": "regular package", "module": "module"}.get(kind, kind)
                findings.append(Finding("NS303", name, f"{text} {name} of {item.name} shadows the namespace "
                                        f"portions {shown} ship under {name.replace('.', '/')}/",
                                        (item.name, *shadowed), details))
    return findings


def _declared_overlaps(selected: list[Selected]) -> list[Finding]:
    """NS304, as ``conflicts`` decides it, found through a sorted index of every location."""
    if not any(item.declares for item in selected):
        return []  # PEP 794 overlaps need a declaration on at least one side
    effective = {item.project: (item, *item.effective()) for item in selected}
    locations = sorted({(location, project) for project, (_, names, namespaces) in effective.items()
                        for location in names | namespaces})
    keys = [location for location, _ in locations]
    findings = []
    for project, (one, names, namespaces) in sorted(effective.items()):
        for claim in sorted(names):
            for index in range(bisect.bisect_left(keys, claim), len(locations)):
                location, other_project = locations[index]
                if location != claim and not location.startswith(claim + "."):
                    if location > claim + "/":  # past every name starting with claim + "."
                        break
                    continue
                if other_project == project:
                    continue
                other, other_names, other_namespaces = effective[other_project]
                if not (one.declares or other.declares):
                    continue
                if exclusive_claim(names, namespaces, location) != claim:
                    continue
                kind = "Name" if location in other_names else "Namespace"
                if claim == location and kind == "Name" and project > other_project:
                    continue  # the same Import-Name on both sides: reported once
                findings.append(Finding(
                    "NS304", claim, f"{one.name} claims {claim} as Import-Name, and {other.name} lists {location} "
                    f"as Import-{kind}: they conflict when installed together", (one.name, other.name),
                    {"name": location, "claim": claim, "overlap": f"Name/{kind}"},
                ))
    return findings


def _mixed_namespaces(store: IndexStore) -> dict[str, tuple[dict[str, set[str]], set[str]]]:
    """namespace -> ({project: legacy styles}, {projects with only PEP 420 portions}), for the
    namespaces that have both."""
    styles: dict[str, dict[str, set[str]]] = collections.defaultdict(lambda: collections.defaultdict(set))
    for name, style, project in _namespace_rows(store):
        styles[name][project].add(style)
    mixed = {}
    for name, projects in styles.items():
        legacy = {p: {s for s in found if s != "pep420"} for p, found in projects.items()
                  if found & set(LEGACY_STYLES)}
        pep420 = {p for p, found in projects.items() if not found & set(LEGACY_STYLES)}
        if legacy and pep420:
            mixed[name] = (legacy, pep420)
    return mixed


def _namespace_rows(store: IndexStore) -> list[tuple[str, str, str]]:
    """(namespace, style, project) of the selected distributions. In an artifact of several
    distributions (Debian's python3-azure holds 269) a namespace belongs to those that ship
    files in it; one that no RECORD names belongs to the artifact's only distribution, if it
    has one."""
    rows = store.db.execute(
        "SELECT n.name, n.style, n.distributions, s.name, s.project, "
        "(SELECT count(*) FROM distributions d WHERE d.artifact_id = n.artifact_id) "
        "FROM namespaces n JOIN temp.selected s ON n.artifact_id = s.artifact_id")
    found = []
    for name, style, owners, dist, project, count in rows:
        listed = json.loads(owners)
        if dist in listed or (not listed and count == 1):
            found.append((name, style, project))
    return found


def _census(store: IndexStore, selected: list[Selected], mixed: dict) -> dict[str, Any]:
    db = store.db
    artifacts = {f"{kind or 'unknown'} {status}": count for kind, status, count in db.execute(
        "SELECT kind, status, count(*) FROM artifacts GROUP BY kind, status ORDER BY kind, status")}
    projects_by_style: dict[str, set[str]] = collections.defaultdict(set)
    namespaces_by_style: dict[str, set[str]] = collections.defaultdict(set)
    for name, style, project in _namespace_rows(store):
        projects_by_style[style].add(project)
        namespaces_by_style[style].add(name)
    with_namespaces = set().union(*projects_by_style.values()) if projects_by_style else set()
    legacy_projects = set().union(*(projects_by_style[s] for s in LEGACY_STYLES)) if projects_by_style else set()
    pth = dict(db.execute(
        "SELECT p.kind, count(*) FROM pth_lines p WHERE p.artifact_id IN (SELECT artifact_id FROM temp.selected) "
        "GROUP BY p.kind ORDER BY p.kind"))
    codes = dict(db.execute(
        "SELECT code, count(*) FROM findings WHERE artifact_id IN (SELECT artifact_id FROM temp.selected) "
        "GROUP BY code ORDER BY code"))
    legacy_files = dict(db.execute(
        "SELECT kind, count(*) FROM legacy_files WHERE artifact_id IN (SELECT artifact_id FROM temp.selected) "
        "GROUP BY kind ORDER BY kind"))
    extensions = db.execute(
        "SELECT count(*) FROM extensions WHERE artifact_id IN (SELECT artifact_id FROM temp.selected)").fetchone()[0]
    return {
        "artifacts": artifacts,
        "projects": len({s.project for s in selected}),
        "distributions": len(selected),
        "projects_with_namespaces": len(with_namespaces),
        "projects_with_legacy_namespaces": len(legacy_projects),
        "projects_by_namespace_style": {style: len(projects_by_style.get(style, ())) for style in NAMESPACE_STYLES},
        "namespaces_by_style": {style: len(namespaces_by_style.get(style, ())) for style in NAMESPACE_STYLES},
        "mixed_namespaces": {name: {"legacy": len(legacy), "pep420": len(pep420)}
                             for name, (legacy, pep420) in sorted(mixed.items())},
        "legacy_files": legacy_files,
        "pth_import_lines": pth,
        "extensions": extensions,
        "extension_findings": {code: codes.get(code, 0) for code in EXTENSION_CODES},
        "findings_by_code": codes,
    }


def _and(names: tuple[str, ...] | list[str]) -> str:
    names = list(names)
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else (names[0] if names else "")
