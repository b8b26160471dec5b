"""``ns-strip manifest``: write a package's namespace manifest from its staged site dir."""

from __future__ import annotations

import argparse

from .clishared import add_manifest_dir_argument, manifest_report
from .manifest import PLACEHOLDER_MODES
from .report import Report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DESTDIR", help="staging root; SITEDIR is then absolute in the target system")
    parser.add_argument("path", metavar="SITEDIR", help="the site dir holding exactly this package's files")
    parser.add_argument("--package", required=True, metavar="PKG", help="the package (.deb, RPM, ebuild) name")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of MANIFEST_DIR/PKG.json")
    parser.add_argument("--placeholders", choices=PLACEHOLDER_MODES, default="none",
                        help="the registry keeps a pkgutil-style __init__.py in the package's namespace "
                             "directories while it is installed ('pkgutil'; default none); recorded in the manifest")
    add_manifest_dir_argument(parser)


def run(args: argparse.Namespace) -> Report:
    return manifest_report(args.path, args.root, args.package, args.manifest_dir, args.output, args.placeholders)
