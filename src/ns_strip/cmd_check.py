"""``ns-strip check``: conflicts across several distributions (wheels, site dirs, a mix)."""

from __future__ import annotations

import argparse

from . import stripguard, syspath
from .clishared import reading
from .conflicts import check, load
from .report import Report
from .scan import missing_record_files, scan
from .sources import TreeSource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DESTDIR", help="staging root; site-dir PATHs are then absolute in it")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="wheels and site dirs; every distribution in them is checked against every other")
    # issue 12: what a strip of each site dir would hide on the target interpreter's sys.path (NS130)
    syspath.add_python_argument(parser)


def run(args: argparse.Namespace) -> Report:
    # Every tree and wheel is read, and the lock of every site dir held, until the end.
    with reading(args.paths, args.root) as opened:
        sources = list(zip(args.paths, opened))
        installed = load(sources)
        findings = check(installed)
        for _, source in sources:  # NS401: a RECORD listing a file Debian removed is reported, not fatal
            if isinstance(source, TreeSource):
                owned = [item.distribution for item in installed if item.source is source]
                findings.extend(missing_record_files(source, owned)[1])
        report = Report(findings=findings, data={"distributions": [
            dict(item.distribution.to_json(), source=item.label) for item in installed
        ]})
        for path, source in sources:
            if isinstance(source, TreeSource):
                stripguard.guard_strip(args, scan(source), report, path)
    conflicts = sum(1 for finding in findings if finding.code != "NS302")
    report.note(f"Checked {len(installed)} distributions from {len(sources)} paths: "
                f"{conflicts} conflicts, {len(findings) - conflicts} shared identical files")
    return report
