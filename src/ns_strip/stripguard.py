"""NS130: namespaces a strip of this tree would leave hidden behind another ``sys.path`` entry.

For each namespace strip would change in a site dir, :mod:`crossentry` compares the portion's
importability before and after on the target interpreter's whole ``sys.path``. A portion that
turns hidden is an error: its files are kept (the scan's candidates for it are held back)
unless the maintainer names the namespace with ``--allow-hidden``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Sequence

from pathlib import Path

from .crossentry import EntryProber, HiddenPortion, entry_index, hidden_by_strip
from .distributions import Owners, load_distributions
from .errors import NsStripError
from .findings import Finding
from .nspkg import NSPKG_SUFFIX
from .plan import is_kept_by_user
from .scan import KeptFile, ScanResult, dotted
from .sources import TreeSource, parent_of
from .syspath import Interpreter, resolve

ALLOW_OPTION = "--allow-hidden"


def stripped_namespaces(result: ScanResult) -> dict[str, tuple[bool, bool]]:
    """namespace -> (its __init__.py is stripped, a *-nspkg.pth line of it is stripped)."""
    changed: dict[str, tuple[bool, bool]] = {}
    for candidate in result.candidates:
        if candidate.kind == "init":
            name = dotted(parent_of(candidate.path))
            init, nspkg = changed.get(name, (False, False))
            changed[name] = (True, nspkg)
    for finding in result.findings:
        if finding.code == "NS103" and any(c.path == finding.path for c in result.candidates):
            for name in finding.details.get("namespaces", []):
                init, _ = changed.get(name, (False, False))
                changed[name] = (init, True)
    return changed


def _owner(path: str, entry: str, cache: dict[str, Owners | None]) -> str:
    """The distribution that ships ``path`` on ``entry``, as far as its metadata says."""
    if entry not in cache:
        try:
            cache[entry] = Owners(load_distributions(TreeSource(Path(entry))))
        except (NsStripError, OSError, ValueError):  # another entry's metadata: only a name is at stake
            cache[entry] = None
    relative = os.path.relpath(path, entry)
    found = cache[entry]
    owners = found.of_path(relative.replace(os.sep, "/")) if found is not None else []
    if owners:
        return ", ".join(owners)
    name = os.path.basename(path)
    if name.endswith(NSPKG_SUFFIX):  # setuptools names it <distribution>-<version>-nspkg.pth
        stem = name[: -len(NSPKG_SUFFIX)]
        project, _, version = stem.rpartition("-")
        return f"{project or stem} {version}".strip() if project else stem
    return "an unrecorded distribution"


@dataclasses.dataclass
class Guard:
    findings: list[Finding]  # NS130 for each namespace held back
    held: list[KeptFile]  # candidates held back
    # namespaces stripped although hidden, as --allow-hidden said: told, not an error
    allowed: list[dict[str, str]] = dataclasses.field(default_factory=list)


def check_hiding(result: ScanResult, interpreter: Interpreter, tree_entry: str,
                 allowed: Sequence[str] = ()) -> Guard:
    """NS130 findings for ``result`` (a scan of a site dir that is ``tree_entry`` on the
    interpreter's path) and the candidates to hold back."""
    source = result.source
    if not isinstance(source, TreeSource):
        return Guard([], [])
    guard = Guard([], [])
    prober = EntryProber(interpreter)
    owners_cache: dict[str, Owners | None] = {}
    for name, (init, nspkg) in sorted(stripped_namespaces(result).items()):
        hidden = hidden_by_strip(prober, os.fspath(source.site_dir), tree_entry, name, init, nspkg)
        if hidden is None:
            continue
        allowed_here = any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed)
        paths = _candidate_paths(result, name)
        message = _message(hidden, interpreter, _owner(hidden.hider.path, hidden.hider.entry, owners_cache),
                           allowed_here)
        where = paths[0] if paths else name.replace(".", "/")
        details = {"namespace": name, "hidden_by": hidden.hider.path, "entry": hidden.hider.entry,
                   "python": interpreter.executable}
        if allowed_here:
            guard.allowed.append(dict(details, path=where, message=message))
            continue
        guard.findings.append(Finding("NS130", where, message, (), details))
        guard.held.extend(KeptFile(path, "NS130", f"would hide {name} behind {hidden.hider.path}") for path in paths)
    return guard


def _message(hidden: HiddenPortion, interpreter: Interpreter, owner: str, allowed: bool) -> str:
    text = (f"stripping namespace {hidden.name} here leaves its portion hidden behind {hidden.hider.describe()} "
            f"(sys.path entry {hidden.hider.entry}, from {owner}) of {interpreter.executable}")
    if allowed:
        return f"{text}; stripped anyway, as {ALLOW_OPTION} says"
    return text + f"; kept: rebuild that distribution without legacy namespaces, or '{ALLOW_OPTION} {hidden.name}'"


def _candidate_paths(result: ScanResult, name: str) -> list[str]:
    """The files strip would remove for ``name``: its __init__.py (and the bytecode that follows
    it), a *-nspkg.pth or namespace_packages.txt naming it."""
    declared = {f.path for f in result.findings
                if f.code in ("NS103", "NS104") and name in f.details.get("namespaces", [])}
    paths = []
    for candidate in result.candidates:
        if candidate.kind == "init" and dotted(parent_of(candidate.path)) == name:
            paths.append(candidate.path)
        elif candidate.path in declared:
            paths.append(candidate.path)
    return paths


def hold_back(result: ScanResult, guard: Guard) -> ScanResult:
    """``result`` without the held candidates, which are listed as kept."""
    held = {k.path for k in guard.held}
    if not held:
        return result
    return result.replace(
        candidates=[c for c in result.candidates if c.path not in held],
        kept=result.kept + guard.held,
    )


def guard_strip(args, result: ScanResult, report, path: str | None = None) -> ScanResult:  # noqa: ANN001
    """The NS130 check as 'strip' and 'check' run it on a site dir (``path``, default
    ``args.path``): the target interpreter from ``--python`` (or the default for the path),
    findings into ``report``, held files out."""
    path = path or args.path
    if not isinstance(result.source, TreeSource) or not stripped_namespaces(result):
        return result  # a wheel has no place on a sys.path; nothing to strip, nothing to hide
    given = getattr(args, "python", None)
    try:
        interpreter = resolve(given, path, args.root)
    except NsStripError as exc:
        if given:
            raise  # the maintainer named it: that it does not work is the answer
        report.note(f"Other sys.path entries not checked for hidden namespaces: {exc} (give --python)")
        return result
    tree_entry = path if args.root else os.path.abspath(path)
    if entry_index(interpreter.entries, tree_entry) is None:
        # A build directory or a throw-away tree: no other entry shares its imports.
        report.detail(f"{path} is not on the sys.path of {interpreter.executable} ({interpreter.why}); "
                      "other entries not checked for hidden namespaces (give --python)")
        return result
    report.detail(f"Checking the sys.path of {interpreter.executable} ({interpreter.why})")
    keep = getattr(args, "keep", ()) or ()
    wanted = result.replace(candidates=[c for c in result.candidates if not is_kept_by_user(c, keep)])
    guard = check_hiding(wanted, interpreter, tree_entry, getattr(args, "allow_hidden", ()) or ())
    report.findings.extend(guard.findings)
    for item in guard.allowed:
        report.note(f"{item['path']}: {item['message']}")
    report.data.setdefault("allowed_hidden", []).extend(guard.allowed)
    return hold_back(result, guard)

