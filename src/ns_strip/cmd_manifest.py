"""``ns-strip manifest``: write a package's namespace manifest from its staged site dir."""

from __future__ import annotations

import argparse
import os
import posixpath
from pathlib import Path

from .cmd_scan import open_tree
from .errors import UsageError
from .manifest import (
    DEFAULT_MANIFEST_DIR,
    PLACEHOLDER_MODES,
    build_manifest,
    check_package_name,
    default_manifest_path,
    host_path,
    summary,
    write_manifest,
)
from .report import Report
from .scan import scan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DESTDIR", help="staging root; SITEDIR is then absolute in the target system")
    parser.add_argument("path", metavar="SITEDIR", help="the site dir holding exactly this package's files")
    parser.add_argument("--package", required=True, metavar="PKG", help="the package (.deb, RPM, ebuild) name")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of MANIFEST_DIR/PKG.json")
    parser.add_argument("--placeholders", choices=PLACEHOLDER_MODES, default="none",
                        help="the registry keeps a pkgutil-style __init__.py in the package's namespace "
                             "directories while it is installed ('pkgutil'; default none); recorded in the manifest")
    add_manifest_dir_argument(parser)


def add_manifest_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manifest-dir", default=DEFAULT_MANIFEST_DIR, metavar="DIR",
        help=f"where manifests are installed, in the target system (default {DEFAULT_MANIFEST_DIR})",
    )


def run(args: argparse.Namespace) -> Report:
    return manifest_report(args.path, args.root, args.package, args.manifest_dir, args.output, args.placeholders)


def manifest_report(path: str, root: str | None, package: str, manifest_dir: str, output: str | None = None,
                    placeholders: str = "none") -> Report:
    """Scan the site dir afresh and write the package's manifest; used by 'manifest' and 'strip'."""
    check_package_name(package)
    result = scan(open_tree(path, root))
    site_dir = posixpath.normpath(path) if root is not None else Path(os.path.abspath(path)).as_posix()
    manifest = build_manifest(result, package, site_dir, placeholders)
    if output is not None:
        target = Path(output)
        write_manifest(manifest, target)
    else:
        target = host_path(root, default_manifest_path(manifest_dir, package), "--manifest-dir")
        write_manifest(manifest, target, root)
    report = Report()
    report.action(f"Writing manifest of {package} to {target} ({summary(manifest)})")
    report.data["manifest"] = manifest.to_json()
    report.data["manifest_path"] = str(target)
    return report


def add_strip_manifest_arguments(parser: argparse.ArgumentParser) -> None:
    """``strip --manifest-package PKG [--manifest-dir DIR]``: write the manifest after stripping."""
    parser.add_argument("--manifest-package", metavar="PKG",
                        help="after stripping a site dir, write PKG's namespace manifest (see 'ns-strip manifest')")
    add_manifest_dir_argument(parser)


def check_strip_manifest_options(args: argparse.Namespace, wheel: bool) -> None:
    """Refuse a bad manifest request before strip changes anything."""
    if args.manifest_package is None:
        return
    if wheel:
        raise UsageError("--manifest-package describes an installed site dir, not a wheel")
    host_path(args.root, default_manifest_path(args.manifest_dir, args.manifest_package), "--manifest-dir")
