"""``ns-strip strip``: remove legacy namespace files from a site dir, keeping RECORD true."""

from __future__ import annotations

import argparse

from . import journal
from .errors import ApplyError
from .plan import StripPlan, plan_strip
from .report import Report
from .scan import scan
from .sources import TreeSource

# Findings that strip turns into actions: in its output they are the "Stripping" lines.
_ACTED_ON = ("NS101", "NS102", "NS103", "NS104")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DESTDIR", help="staging root; PATH is then absolute in the target system")
    parser.add_argument("path", metavar="PATH", help="site dir")
    parser.add_argument("--dry-run", "-n", action="store_true", help="show the plan, change nothing")
    parser.add_argument(
        "--keep", action="append", default=[], metavar="PATTERN",
        help="never strip a file whose path or namespace matches this glob (repeatable)",
    )


def run(args: argparse.Namespace) -> Report:
    source = TreeSource.open(args.path, args.root)
    report = Report()
    recovered = None
    if journal.pending(source.site_dir):
        if args.dry_run:
            raise ApplyError(
                "an interrupted strip left its journal here; run without --dry-run to complete or roll it back",
                str(journal.journal_dir(source.site_dir)),
            )
        recovered = journal.recover(source.site_dir)
        report.action(f"Recovered an interrupted strip in {args.path}: {recovered}")
        source = TreeSource.open(args.path, args.root)

    result = scan(source)
    plan = plan_strip(result, args.keep)
    report.findings.extend(f for f in result.findings if f.code not in _ACTED_ON)
    _describe(plan, report, args.dry_run)
    if not args.dry_run and not plan.is_empty:
        journal.apply(source.site_dir, plan.removed_paths, plan.rewrites, plan.empty_dirs)
    if plan.is_empty:
        report.note(f"Nothing to strip in {args.path}")
    report.data.update({
        "removed": plan.removed_paths + [d + "/" for d in plan.empty_dirs],
        "rewritten": sorted(plan.rewrites),
        "kept": [k.to_json() for k in plan.kept],
        "dry_run": bool(args.dry_run),
        "recovered": recovered,
    })
    return report


def _describe(plan: StripPlan, report: Report, dry_run: bool) -> None:
    prefix = "[dry run] " if dry_run else ""
    for removal in plan.removals:
        if removal.description is not None:
            report.action(f"{prefix}Stripping {removal.description} ({removal.path})")
        else:
            report.detail(f"{prefix}Removing {removal.path}")
    for path in plan.empty_dirs:
        report.detail(f"{prefix}Removing empty directory {path}/")
    for path in sorted(plan.rewrites):
        report.action(f"{prefix}Updating {path}")
    for kept in plan.kept:
        if kept.code == "keep":
            report.note(f"Keeping {kept.path} ({kept.reason})")
