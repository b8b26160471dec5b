"""What ``dh_ns_strip`` does to each binary package it acts on.

For every staged site dir of the package (``debian/<pkg>/usr/lib/python3/dist-packages``
and ``usr/lib/python3.X/{dist,site}-packages``) it runs ``ns-strip strip --root debian/<pkg>``.
A package that then still has namespace directories gets its manifest
(``/usr/share/ns-strip/manifests/<pkg>.json``, shipped in the package). No maintainer-script
snippets: python3-ns-strip's dpkg file trigger on that directory keeps the registry's
reference counts, once per dpkg run for any number of packages. A package without namespaces
gets no manifest.

Each step is an ``ns-strip`` command run in this process through the command line's own
parser, so ``DH_VERBOSE`` echoes exactly the command that runs, and what the commands do is
defined in one place only.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..cli import build_parser
from ..clishared import reading_tree
from ..errors import EXIT_ROLLED_BACK, BadInputError, NsStripError, UsageError
from ..findings import Severity
from ..manifest import (
    DEFAULT_MANIFEST_DIR,
    PLACEHOLDER_MODES,
    Manifest,
    build_manifest,
    default_manifest_path,
    host_path,
)
from ..report import LineLevel, Report
from ..scan import ScanResult, scan
from ..sources import TreeSource
from . import dhlib

TOOL = "dh_ns_strip"
CONFIG_FILE = "ns-strip"  # debian/<pkg>.ns-strip
OWN_OPTIONS = ("keep", "placeholders", "check-imports!")
# Where Debian's Python puts packages; dh_python3 moves the versioned ones to the first.
_YES_NO = ("yes", "no")
SITE_DIR_PATTERNS = ("usr/lib/python3/dist-packages", "usr/lib/python3.*/dist-packages",
                     "usr/lib/python3.*/site-packages")


@dataclasses.dataclass(frozen=True)
class PackageSettings:
    keep: tuple[str, ...]  # --keep patterns for strip
    placeholders: str  # the registry's placeholder mode, recorded in the manifest
    check_imports: bool = False  # strip --check-imports with each Python version built


@dataclasses.dataclass(frozen=True)
class PackageWork:
    package: dhlib.DhPackage
    settings: PackageSettings
    tmpdir: Path
    site_dirs: list[str]  # absolute in the target system


def main(argv: Sequence[str]) -> int:
    try:
        options = dhlib.parse_options(TOOL, argv, OWN_OPTIONS, CONFIG_FILE)
        if options is None:
            return 0
        if options.arguments:
            raise UsageError(f"unexpected argument {options.arguments[0]!r}; {TOOL} takes options only")
        parser = build_parser()
        # Every package is checked before any is changed: a bad config file or layout in the
        # last package must not leave the first one stripped.
        work = [prepare(options, package) for package in options.packages]
        for item in work:
            process_package(options, parser, item)
        dhlib.write_log(options, [p.name for p in options.packages])
    except dhlib.DhExit as exc:
        return exc.code
    except NsStripError as exc:
        print(dhlib.error_line(TOOL, str(exc)), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # Not one of ours (those are NsStripErrors): still one line, never a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(dhlib.error_line(TOOL, f"{where}{exc.strerror or exc}"), file=sys.stderr)
        return EXIT_ROLLED_BACK
    except KeyboardInterrupt:
        print(dhlib.error_line(TOOL, "interrupted"), file=sys.stderr)
        return 130
    return 0


def package_settings(options: dhlib.DhOptions, package: dhlib.DhPackage) -> PackageSettings:
    """Command-line options apply to every package; the package's config file adds to them
    (keep) or overrides them (placeholders). ``-X ITEM`` keeps what has ITEM in its path."""
    keep = list(options.options.get("keep", []))
    keep += [f"*{item}*" for item in options.exclude]
    given = options.options.get("placeholders", [])
    placeholders = given[-1] if given else "none"
    if placeholders not in PLACEHOLDER_MODES:
        raise UsageError(f"--placeholders {placeholders!r} is not one of {', '.join(PLACEHOLDER_MODES)}")
    given_check = options.options.get("check-imports", [])
    check_imports = bool(given_check) and given_check[-1] == "yes"
    if package.config is not None:
        directives = {"keep": None, "placeholders": PLACEHOLDER_MODES, "check-imports": _YES_NO}
        for name, value in dhlib.read_config(package.config, directives):
            if name == "keep":
                keep.append(value)
            elif name == "placeholders":
                placeholders = value
            else:
                check_imports = value == "yes"
    return PackageSettings(tuple(keep), placeholders, check_imports)


def staged_site_dirs(tmpdir: Path) -> list[str]:
    """The package's site dirs, absolute in the target system; links are not followed."""
    found = set()
    for pattern in SITE_DIR_PATTERNS:
        for path in tmpdir.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                found.add("/" + path.relative_to(tmpdir).as_posix())
    return sorted(found)


def prepare(options: dhlib.DhOptions, package: dhlib.DhPackage) -> PackageWork:
    """Read the package's settings and find its site dirs; refuse what cannot be done."""
    settings = package_settings(options, package)
    tmpdir = Path(package.tmpdir)
    site_dirs = staged_site_dirs(tmpdir) if tmpdir.is_dir() else []
    # Legacy namespaces are namespace directories before stripping too, so two site dirs
    # with namespaces are found now, before anything changes. (No journal check here: an
    # interrupted strip is for strip itself to finish.)
    namespace_manifest(package.name, tmpdir, site_dirs, lambda site: scan(TreeSource.open(site, str(tmpdir))))
    return PackageWork(package, settings, tmpdir, site_dirs)


def process_package(options: dhlib.DhOptions, parser: argparse.ArgumentParser, work: PackageWork) -> None:
    package, settings, tmpdir, site_dirs = work.package, work.settings, work.tmpdir, work.site_dirs
    if not site_dirs:
        dhlib.verbose_print(options, f"# {package.name}: no Python site dir in {tmpdir}; nothing to do")
        return
    keep_args = [f"--keep={pattern}" for pattern in settings.keep]
    dry_run = ["--dry-run"] if options.no_act else []
    check_args = check_imports_arguments(parser, python_versions()) if settings.check_imports and not dry_run else []
    for site in site_dirs:
        report = run_command(options, parser, ["strip", "--root", str(tmpdir), site, *keep_args, *dry_run,
                                               *check_args])
        show(options, package.name, site, report)

    manifest = namespace_manifest(package.name, tmpdir, site_dirs, lambda site: _scan_stripped(site, tmpdir))
    if manifest is None:
        dhlib.verbose_print(options, f"# {package.name}: no namespace packages; no manifest")
        return
    installed_manifest = default_manifest_path(DEFAULT_MANIFEST_DIR, package.name)
    manifest_file = host_path(str(tmpdir), installed_manifest, "the manifest")
    manifest_command = ["manifest", "--root", str(tmpdir), manifest.site_dir, "--package", package.name]
    if settings.placeholders != "none":
        manifest_command += ["--placeholders", settings.placeholders]
    if options.no_act:
        dhlib.verbose_print(options, dhlib.escape_shell(["ns-strip", *manifest_command]))
    else:
        created = [d for d in _parents_below(manifest_file, tmpdir) if not d.exists()]
        run_command(options, parser, manifest_command)
        _set_shipped_modes(manifest_file, created)
    # No maintainer-script snippets: python3-ns-strip's file trigger on the manifests directory
    # brings the registry in line once per dpkg run, for every package that ships a manifest.


def check_imports_arguments(parser: argparse.ArgumentParser, versions: Sequence[str]) -> list[str]:
    """``--check-imports --python /usr/bin/python3.X`` for strip, for the versions being built.

    ``strip --check-imports`` is an opt-in of ns-strip's strip command; an ns-strip whose strip
    has no such option is refused plainly rather than given an option it would reject. When
    ``--python`` may be repeated every version is checked, else the first (the default one).
    """
    strip = _subparser(parser, "strip")
    python = next((a for a in strip._actions if "--python" in a.option_strings), None)
    if "--check-imports" not in strip._option_string_actions or python is None:
        raise UsageError("--check-imports needs an ns-strip whose 'strip' has --check-imports and --python")
    if not versions:
        raise UsageError("--check-imports: no Python 3 version to check with (py3versions found none)")
    chosen = versions if isinstance(python, argparse._AppendAction) else versions[:1]
    arguments = ["--check-imports"]
    for version in chosen:
        arguments += ["--python", f"/usr/bin/{version}"]
    return arguments


def python_versions() -> list[str]:
    """The Python 3 versions being built (``py3versions -s``: python3.11 ...), default first."""
    found = []
    for option in ("-d", "-s"):
        try:
            done = subprocess.run(["py3versions", option], capture_output=True, text=True, check=False)
        except OSError:
            continue
        found += [v for v in done.stdout.split() if v not in found] if done.returncode == 0 else []
    return found


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[name]


def _scan_stripped(site: str, tmpdir: Path) -> ScanResult:
    """A site dir of the package after its strip (one an interrupted strip left is refused)."""
    with reading_tree(site, str(tmpdir)) as source:
        return scan(source)


def namespace_manifest(package: str, tmpdir: Path, site_dirs: Sequence[str],
                       scan_site: Callable[[str], ScanResult]) -> Manifest | None:
    """The manifest of the one site dir that holds namespace directories, if one does."""
    with_namespaces = []
    for site in site_dirs:
        manifest = build_manifest(scan_site(site), package, site)
        if manifest.namespaces:
            with_namespaces.append(manifest)
    if len(with_namespaces) > 1:
        sites = ", ".join(m.site_dir for m in with_namespaces)
        raise BadInputError(
            f"namespace packages in more than one site dir ({sites}); a manifest describes one site "
            "dir per package: install them into one (dh_python3 moves /usr/lib/python3.X to "
            "/usr/lib/python3/dist-packages)",
            str(tmpdir),
        )
    return with_namespaces[0] if with_namespaces else None


def run_command(options: dhlib.DhOptions, parser: argparse.ArgumentParser, argv: list[str]) -> Report:
    """Run one ns-strip command here, echoed like debhelper's doit()."""
    dhlib.verbose_print(options, dhlib.escape_shell(["ns-strip", *argv]))
    args = parser.parse_args(argv)
    # The command line's own dispatch: cli records each command's module on its subparser.
    return importlib.import_module(args._module).run(args)


def show(options: dhlib.DhOptions, package: str, site: str, report: Report) -> None:
    for level, text in report.lines:
        if level is LineLevel.ACTION:
            dhlib.nonquiet_print(options, f"{package}: {text}")
        elif options.verbose:
            dhlib.verbose_print(options, f"{package}: {text}")
    for finding in report.findings:
        line = f"{package}: {site}: {finding.to_line()}"
        if finding.severity is Severity.INFO:
            dhlib.verbose_print(options, line)
        else:
            dhlib.warning(options, line)


def _parents_below(path: Path, top: Path) -> list[Path]:
    parents = []
    for parent in path.parents:
        if parent == top:
            break
        parents.append(parent)
    return parents


def _set_shipped_modes(manifest_file: Path, created_dirs: Sequence[Path]) -> None:
    """dh_fixperms has run already: give what goes into the .deb the modes it would have given."""
    for directory in created_dirs:
        os.chmod(directory, 0o755)
    os.chmod(manifest_file, 0o644)
