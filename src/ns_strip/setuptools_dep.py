"""NS403: a runtime requirement on setuptools that only the legacy namespace files needed.

pkg_resources-style namespaces import ``pkg_resources`` at run time, so setuptools adds
``Requires-Dist: setuptools`` for them. Once the namespace files are stripped nothing needs
it, unless other code of the distribution imports ``setuptools`` or ``pkg_resources``. That is
decided on syntax trees of every ``.py`` file the distribution lists (the files strip removes
excepted), its ``.pth`` lines, and its entry points (a setuptools plugin needs setuptools even
when it imports nothing at module level).
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
from collections.abc import Collection

from .distributions import Distribution
from .errors import BadInputError
from .findings import Finding
from .scan import ScanResult
from .pysource import TooManyTokensError, UnparseableError, parse_bounded
from .safeio import MAX_PTH_BYTES, MAX_SOURCE_BYTES, MAX_TEXT_BYTES, FileTooLargeError
from .sources import Source, join

SETUPTOOLS = "setuptools"
_SETUPTOOLS_MODULES = frozenset({"setuptools", "pkg_resources"})
_SETUPTOOLS_MARKERS = (b"setuptools", b"pkg_resources")
# Entry point groups that only setuptools (or distutils, which it provides) loads.
_PLUGIN_GROUPS = ("setuptools.", "distutils.", "egg_info.")


@dataclasses.dataclass(frozen=True)
class NamespaceOnlyRequirement:
    distribution: Distribution
    metadata_path: str
    requirements: tuple[str, ...]  # the Requires-Dist values, as written

    def finding(self) -> Finding:
        listed = "; ".join(self.requirements)
        return Finding(
            "NS403", self.metadata_path,
            f"Requires-Dist: {listed} is needed only by legacy namespace files (nothing else imports "
            "setuptools or pkg_resources); 'ns-strip strip --drop-setuptools-dep' removes it",
            (self.distribution.name,), {"requirements": list(self.requirements)},
        )


def metadata_path(dist: Distribution) -> str:
    return join(dist.metadata_dir, "METADATA")


def namespace_only_requirements(result: ScanResult, stripped: Collection[str]) -> list[NamespaceOnlyRequirement]:
    """Distributions whose setuptools requirement only served the namespace files in ``stripped``."""
    legacy = _setuptools_namespace_files(result) & set(stripped)
    found = []
    for dist in result.owners.distributions_of(legacy):  # most ship no setuptools namespace file
        if not dist.metadata_dir.endswith(".dist-info") or dist.record_path is None:
            continue  # egg-info keeps requirements in requires.txt; not rewritten
        path = metadata_path(dist)
        if not dist.lists(path):
            continue
        # Imported here: most scans meet no setuptools namespace file, and the METADATA editor
        # pulls in packaging's requirement parser, a large share of a small scan's start-up.
        from .metadata_edit import MetadataDocument, is_requirement_on

        document = MetadataDocument.parse(result.source.read_bytes(path), path)
        requirements = tuple(v for v in document.values("Requires-Dist") if is_requirement_on(v, SETUPTOOLS))
        if not requirements:
            continue
        if _uses_setuptools(result.source, dist, set(stripped)):
            continue
        found.append(NamespaceOnlyRequirement(dist, path, requirements))
    return found


def findings(result: ScanResult) -> list[Finding]:
    """NS403 and NS405 for a scan: as if strip removed every file it would remove."""
    stripped = [candidate.path for candidate in result.candidates]
    found = [item.finding() for item in namespace_only_requirements(result, stripped)]
    return found + pkg_resources_users(result, stripped)


_PKG_RESOURCES = frozenset({"pkg_resources"})
_PKG_RESOURCES_BYTES = b"pkg_resources"


def pkg_resources_users(result: ScanResult, stripped: Collection[str]) -> list[Finding]:
    """NS405: distributions with legacy namespace files that import ``pkg_resources`` for more
    than a namespace declaration strip removes. setuptools 82 dropped ``pkg_resources``, so
    such a distribution now needs a provider of its own; a pure declaration does not (strip
    removes it). Only distributions with legacy namespace files are read: the question is
    what is left of their pkg_resources use once the namespaces are PEP 420."""
    legacy = _setuptools_namespace_files(result) | {
        n.init for n in result.namespaces if n.style == "pkg_resources" and n.init}  # hybrids too
    # Namespace __init__.py files (pure or hybrid) use pkg_resources to declare: a pure one is
    # stripped, a hybrid one is NS110's to report (it keeps its declaration with its code).
    stripped_set = set(stripped) | {n.init for n in result.namespaces if n.init}
    modules: list[tuple[Distribution, list[str]]] = []
    for dist in result.owners.distributions_of(legacy):
        if dist.lists_below("pkg_resources"):
            continue  # setuptools itself: the provider
        modules.append((dist, [path for path in dist.paths_ending((".py", ".pth"))
                               if path not in stripped_set and not path.startswith("../")]))
    found = []
    for dist, paths in modules:
        users = []
        for path in paths:
            try:
                data = result.source.read_bytes(path)
            except BadInputError:
                continue  # missing or unreadable: NS401 and the scan say so
            if _PKG_RESOURCES_BYTES not in data:
                continue
            if path.endswith(".pth"):
                uses = _pth_imports(data, _PKG_RESOURCES)
            else:
                uses = _imports_modules(data, _PKG_RESOURCES)
            if uses:
                users.append(path)
        if users:
            shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
            found.append(Finding(
                "NS405", users[0],
                f"{dist.name} imports pkg_resources beyond the namespace declarations strip removes ({shown}): "
                "setuptools 82 no longer provides pkg_resources, so it needs a dependency on a separate "
                "pkg_resources provider (or setuptools<82)",
                (dist.name,), {"files": users},
            ))
    return found


def _imports_modules(data: bytes, modules: frozenset[str]) -> bool:
    try:
        tree = parse_bounded(data)
    except (TooManyTokensError, UnparseableError):
        return False  # not Python this parser reads (or too large to): NS111/NS114 report a namespace-like one
    return any(_imports_in(node) & modules for node in ast.walk(tree))


def _pth_imports(data: bytes, modules: frozenset[str]) -> bool:
    lines = data.decode("utf-8", errors="replace").splitlines()
    return any(_imports_modules(line.encode("utf-8"), modules) for line in lines
               if line.startswith(("import ", "import\t")))


def drop_rewrites(result: ScanResult, removed: Collection[str]) -> tuple[dict[str, bytes], list[str]]:
    """New METADATA and RECORD contents without the namespace-only setuptools requirements.

    The RECORD also loses the rows of ``removed``, so these rewrites replace the plan's own
    rewrite of the same RECORD. Returns the rewrites and one description per distribution.
    """
    from .metadata_edit import drop_requirement, rewrite_record

    rewrites: dict[str, bytes] = {}
    described = []
    removed_set = set(removed)
    for item in namespace_only_requirements(result, removed_set):
        dist = item.distribution
        new_metadata, dropped = drop_requirement(result.source.read_bytes(item.metadata_path), item.metadata_path,
                                                 SETUPTOOLS)
        rewrites[item.metadata_path] = new_metadata
        assert dist.record_path is not None
        rewrites[dist.record_path] = rewrite_record(dist.record_lines, removed_set, {item.metadata_path: new_metadata})
        described.append(f"Dropping Requires-Dist: {'; '.join(dropped)} of {dist.name} (needed only for namespaces)")
    return rewrites, described


def _setuptools_namespace_files(result: ScanResult) -> set[str]:
    """Files that exist only for setuptools' namespace machinery."""
    files = {c.path for c in result.candidates if c.kind in ("nspkg_pth", "namespace_packages_txt")}
    files |= {n.init for n in result.namespaces if n.style == "pkg_resources" and n.init and n.action == "strip"}
    return files


def _uses_setuptools(source: Source, dist: Distribution, stripped: set[str]) -> bool:
    for path in dist.files:
        if path in stripped or path.startswith("../"):
            continue
        try:
            if path.endswith(".py") and _imports_setuptools(source.read_bytes(path, limit=MAX_SOURCE_BYTES)):
                return True
            if path.endswith(".pth") and _pth_imports_setuptools(source.read_bytes(path, limit=MAX_PTH_BYTES)):
                return True
            if path == join(dist.metadata_dir, "entry_points.txt") and _is_setuptools_plugin(
                    source.read_bytes(path, limit=MAX_TEXT_BYTES)):
                return True
        except FileTooLargeError:
            return True  # too large to read: cannot tell, so keep the requirement
    return False


def _imports_setuptools(data: bytes) -> bool:
    if not any(marker in data for marker in _SETUPTOOLS_MARKERS):
        return False  # neither name appears anywhere: no import can name them
    try:
        tree = parse_bounded(data)
    except (TooManyTokensError, UnparseableError):
        return True  # cannot tell; the names appear, so keep the requirement
    return any(_imports_in(node) & _SETUPTOOLS_MODULES for node in ast.walk(tree))


def _imports_in(node: ast.AST) -> set[str]:
    """Top-level module names an AST node imports: import statements, ``__import__('x')`` and
    ``importlib.import_module('x')``."""
    if isinstance(node, ast.Import):
        return {alias.name.partition(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return {node.module.partition(".")[0]}
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in ("__import__", "import_module") and isinstance(node.args[0].value, str):
            return {node.args[0].value.partition(".")[0]}
    return set()


def _pth_imports_setuptools(data: bytes) -> bool:
    lines = data.decode("utf-8", errors="replace").splitlines()
    code = [line for line in lines if line.startswith(("import ", "import\t"))]
    return any(_imports_setuptools(line.encode("utf-8")) for line in code)


def _is_setuptools_plugin(data: bytes) -> bool:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    try:
        parser.read_string(data.decode("utf-8", errors="replace"))
    except configparser.Error:
        return any(marker in data for marker in _SETUPTOOLS_MARKERS)
    return any(section.startswith(_PLUGIN_GROUPS) for section in parser.sections())

