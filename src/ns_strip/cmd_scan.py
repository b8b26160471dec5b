"""``ns-strip scan``: report every namespace package and what strip would do with it."""

from __future__ import annotations

import argparse

from . import syspath
from .clishared import reading
from .report import Report
from .scan import NamespaceEntry, ScanResult, scan
from .sources import TreeSource


# When run() returns, a scan holds nothing but its report: no file open (reading() closes the
# site dirs and wheels it opened), no lock (released with them), no atexit handler. The command line leaves without tearing the
# interpreter down (see cli.run): freeing a distro-sized tree's listings and rows one by one
# is work nobody needs.
EXIT_WITHOUT_TEARDOWN = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DESTDIR", help="staging root; PATH is then absolute in the target system")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="site dir, unpacked tree or wheel")
    parser.add_argument("--check-modules", action="store_true",
                        help="also read every module of the distributions with legacy namespace files, for NS403 "
                             "and NS405 (strip, --dry-run included, always does)")
    parser.add_argument("--all-records", action="store_true",
                        help="compare every RECORD with the installed files (NS401); by default only the RECORDs "
                             "that list a namespace file already gone are")
    # issue 12: with --python, also what a strip would hide on that interpreter's sys.path (NS130)
    syspath.add_python_argument(parser)


def run(args: argparse.Namespace) -> Report:
    report = Report(data={"distributions": [], "namespaces": []})
    for path in args.paths:
        # Everything that reads the tree or wheel is done inside: the lock is held, the wheel open.
        with reading([path], args.root) as (source,):
            result = scan(source, records="all" if args.all_records else "namespace")
            if args.check_modules:
                from . import setuptools_dep  # imported only when asked: it reads modules, with packaging

                result.findings.extend(setuptools_dep.findings(result))
            if args.python and isinstance(result.source, TreeSource):
                from . import stripguard  # imported only with --python: most scans look at one tree

                preview = Report()
                stripguard.guard_strip(args, result, preview, path)
                result.findings.extend(preview.findings)
        report.extend(scan_report(result, site=path))
    return report


def namespace_lines(entries: list[NamespaceEntry]) -> list[str]:
    """One line per namespace with all its facets (a namespace shipped both as a directory and
    through a *-nspkg.pth is one namespace): ``namespace xstatic: nspkg_pth; pep420 [..] -> strip``."""
    grouped: dict[str, list[NamespaceEntry]] = {}
    for entry in entries:
        grouped.setdefault(entry.name, []).append(entry)
    lines = []
    for name, facets in grouped.items():
        described = []
        for entry in facets:
            purity = f", {entry.purity}" if entry.purity else ""
            where = f" {entry.init}" if entry.init else ""
            if f"{entry.style}{purity}{where}" not in described:
                described.append(f"{entry.style}{purity}{where}")
        owners = sorted({owner for entry in facets for owner in entry.distributions})
        actions = {entry.action for entry in facets}
        action = "keep" if "keep" in actions else "strip" if "strip" in actions else "none"
        if actions >= {"keep", "strip"}:
            action = "strip, keep"  # some files go, others (named by a finding) stay
        shown = f" [{', '.join(owners)}]" if owners else ""
        lines.append(f"namespace {name}: {'; '.join(described)}{shown} -> {action}")
    return lines


def scan_report(result: ScanResult, site: str) -> Report:
    report = Report()
    report.data["distributions"] = [dict(d.to_json(), site=site) for d in result.distributions]
    report.data["namespaces"] = [dict(n.to_json(), site=site) for n in result.namespaces]
    report.findings.extend(
        f.replace(details=dict(f.details, site=site)) for f in result.findings
    )
    for line in namespace_lines(result.namespaces):
        report.note(line)
    if not result.namespaces:
        report.note(f"{site}: no namespace packages found")
    return report
