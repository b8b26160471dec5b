"""What ``dh_ns_strip`` does to each binary package it acts on.

For every staged site dir of the package (``debian/<pkg>/usr/lib/python3/dist-packages``
and ``usr/lib/python3.X/{dist,site}-packages``) it runs ``ns-strip strip --root debian/<pkg>``.
A package that then still has namespace directories gets its manifest
(``/usr/share/ns-strip/manifests/<pkg>.json``, shipped in the package) and, as debhelper
autoscripts, the maintainer-script snippets of ``ns-strip render debian``, which keep the
registry's reference counts when the package is installed and removed. A package without
namespaces is left without either.

Each step is an ``ns-strip`` command run in this process through the command line's own
parser, so ``DH_VERBOSE`` echoes exactly the command that runs, and what the commands do is
defined in one place only.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import __version__
from ..cli import build_parser
from ..cmd_render import DEBIAN_END, DEBIAN_START
from ..cmd_scan import open_tree
from ..errors import EXIT_ROLLED_BACK, BadInputError, NsStripError, UsageError
from ..findings import Severity
from ..manifest import (
    DEFAULT_MANIFEST_DIR,
    Manifest,
    build_manifest,
    default_manifest_path,
    host_path,
)
from ..registry import PLACEHOLDER_MODES
from ..report import LineLevel, Report
from ..scan import scan
from ..sources import Source, TreeSource
from . import dhlib

TOOL = "dh_ns_strip"
CONFIG_FILE = "ns-strip"  # debian/<pkg>.ns-strip
OWN_OPTIONS = ("keep", "placeholders")
# Where Debian's Python puts packages; dh_python3 moves the versioned ones to the first.
SITE_DIR_PATTERNS = ("usr/lib/python3/dist-packages", "usr/lib/python3.*/dist-packages",
                     "usr/lib/python3.*/site-packages")


@dataclasses.dataclass(frozen=True)
class PackageSettings:
    keep: tuple[str, ...]  # --keep patterns for strip
    placeholders: str  # the registry's placeholder mode


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
    if package.config is not None:
        directives = {"keep": None, "placeholders": PLACEHOLDER_MODES}
        for name, value in dhlib.read_config(package.config, directives):
            if name == "keep":
                keep.append(value)
            else:
                placeholders = value
    return PackageSettings(tuple(keep), placeholders)


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
    namespace_manifest(package.name, tmpdir, site_dirs, lambda site: TreeSource.open(site, str(tmpdir)))
    return PackageWork(package, settings, tmpdir, site_dirs)


def process_package(options: dhlib.DhOptions, parser: argparse.ArgumentParser, work: PackageWork) -> None:
    package, settings, tmpdir, site_dirs = work.package, work.settings, work.tmpdir, work.site_dirs
    if not site_dirs:
        dhlib.verbose_print(options, f"# {package.name}: no Python site dir in {tmpdir}; nothing to do")
        return
    keep_args = [f"--keep={pattern}" for pattern in settings.keep]
    dry_run = ["--dry-run"] if options.no_act else []
    for site in site_dirs:
        report = run_command(options, parser, ["strip", "--root", str(tmpdir), site, *keep_args, *dry_run])
        show(options, package.name, site, report)

    manifest = namespace_manifest(package.name, tmpdir, site_dirs, lambda site: open_tree(site, str(tmpdir)))
    if manifest is None:
        dhlib.verbose_print(options, f"# {package.name}: no namespace packages; no manifest, no scripts")
        return
    installed_manifest = default_manifest_path(DEFAULT_MANIFEST_DIR, package.name)
    manifest_file = host_path(str(tmpdir), installed_manifest, "the manifest")
    manifest_command = ["manifest", "--root", str(tmpdir), manifest.site_dir, "--package", package.name]
    if options.no_act:
        dhlib.verbose_print(options, dhlib.escape_shell(["ns-strip", *manifest_command]))
    else:
        created = [d for d in _parents_below(manifest_file, tmpdir) if not d.exists()]
        run_command(options, parser, manifest_command)
        _set_shipped_modes(manifest_file, created)

    if options.no_scripts:
        return
    render_command = ["render", "debian"]
    if not options.no_act:
        render_command.append(str(manifest_file))  # checks the manifest just written
    render_command += ["--package", package.name]
    if settings.placeholders != "none":
        render_command += ["--placeholders", settings.placeholders]
    report = run_command(options, parser, render_command)
    for snippet in report.data["snippets"]:
        dhlib.autoscript(options, package.name, snippet["kind"], _unmarked(snippet["text"]), __version__,
                         f"ns-strip registry ({snippet['kind']})")


def namespace_manifest(package: str, tmpdir: Path, site_dirs: Sequence[str],
                       open_site: Callable[[str], Source]) -> Manifest | None:
    """The manifest of the one site dir that holds namespace directories, if one does."""
    with_namespaces = []
    for site in site_dirs:
        manifest = build_manifest(scan(open_site(site)), package, site)
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


def _unmarked(text: str) -> str:
    """The snippet without render's own markers: autoscript() adds debhelper's."""
    lines = text.splitlines(keepends=True)
    if lines and lines[0].rstrip("\n") == DEBIAN_START:
        lines = lines[1:]
    if lines and lines[-1].rstrip("\n") == DEBIAN_END:
        lines = lines[:-1]
    return "".join(lines)


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
