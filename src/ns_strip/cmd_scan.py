"""``ns-strip scan``: report every namespace package and what strip would do with it."""

from __future__ import annotations

import argparse
import dataclasses

from . import journal, setuptools_dep
from .errors import ApplyError
from .report import Report
from .scan import ScanResult, scan
from .sources import Source, TreeSource, is_wheel_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DESTDIR", help="staging root; PATH is then absolute in the target system")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="site dir, unpacked tree or wheel")


def open_tree(path: str, root: str | None) -> TreeSource:
    """Open a site dir for reading, refusing one that an interrupted strip left half done."""
    source = TreeSource.open(path, root)
    if journal.pending(source.site_dir):
        raise ApplyError(
            "an interrupted strip left its journal here; run 'ns-strip strip' on it to complete "
            "or roll back that change first",
            str(journal.journal_dir(source.site_dir)),
        )
    return source


def open_source(path: str, root: str | None) -> Source:
    """A wheel (validated; ``--root`` applies to site dirs only) or a site dir, for reading."""
    if not is_wheel_path(path):
        return open_tree(path, root)
    from .wheels import WheelSource  # imported only for wheels: most runs are on a tree

    return WheelSource.open(path)


def run(args: argparse.Namespace) -> Report:
    report = Report(data={"distributions": [], "namespaces": []})
    for path in args.paths:
        result = scan(open_source(path, args.root))
        result.findings.extend(setuptools_dep.findings(result))
        report.extend(scan_report(result, site=path))
    return report


def scan_report(result: ScanResult, site: str) -> Report:
    report = Report()
    report.data["distributions"] = [dict(d.to_json(), site=site) for d in result.distributions]
    report.data["namespaces"] = [dict(n.to_json(), site=site) for n in result.namespaces]
    report.findings.extend(
        dataclasses.replace(f, details=dict(f.details, site=site)) for f in result.findings
    )
    for entry in result.namespaces:
        purity = f", {entry.purity}" if entry.purity else ""
        where = f" {entry.init}" if entry.init else ""
        owners = f" [{', '.join(entry.distributions)}]" if entry.distributions else ""
        report.note(f"namespace {entry.name}: {entry.style}{purity}{where}{owners} -> {entry.action}")
    if not result.namespaces:
        report.note(f"{site}: no namespace packages found")
    return report
