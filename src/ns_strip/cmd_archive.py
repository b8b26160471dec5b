"""``ns-strip archive index|report``: namespaces, import names and conflicts across whole
archives of wheels, sdists and ``.deb`` files (the capability lives in ``ns_strip.archive``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .clishared import common_options_after_action
from .errors import UsageError
from .findings import Finding
from .report import Report

ACTIONS = {
    "index": "analyse wheels, sdists and .debs into an SQLite index (resumable; local processes or Dask)",
    "report": "conflicts and a census across an index: text, --json, or a self-contained --html page",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="archive_action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    index = actions.add_parser("index", help=ACTIONS["index"], description=ACTIONS["index"],
                               parents=[common_options_after_action()])
    index.add_argument("sources", nargs="+", metavar="SOURCE",
                       help="directories (walked, links not followed) or artifact files")
    index.add_argument("--db", metavar="INDEX", required=True, help="the SQLite index to create or complete")
    engine = index.add_mutually_exclusive_group()
    engine.add_argument("--jobs", "-j", type=int, metavar="N", help="worker processes (default: all cores)")
    engine.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on this Dask distributed scheduler (tcp://HOST:PORT); needs ns-strip[dask]")
    report = actions.add_parser("report", help=ACTIONS["report"], description=ACTIONS["report"],
                                parents=[common_options_after_action()])
    report.add_argument("--db", metavar="INDEX", required=True, help="the index 'archive index' wrote")
    report.add_argument("--html", metavar="FILE", help="also write one self-contained HTML page here")
    report.add_argument("--all-releases", action="store_true",
                        help="every release of every project (default: the newest release of each)")


def run(args: argparse.Namespace) -> Report:
    if args.archive_action == "index":
        return _index(args)
    return _report(args)


def _index(args: argparse.Namespace) -> Report:
    from .archive.engines import DaskEngine, LocalEngine
    from .archive.indexer import IndexSummary, index
    from .archive.store import IndexStore

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    engine = DaskEngine(args.scheduler) if args.scheduler else LocalEngine(args.jobs)
    show = not getattr(args, "quiet", False) and sys.stderr.isatty()
    last = [0.0]

    def progress(summary: IndexSummary) -> None:
        now = time.monotonic()
        if not show or now - last[0] < 0.1:
            return
        last[0] = now
        todo = summary.found - summary.skipped
        sys.stderr.write(f"\rindexing: {summary.done}/{todo} (refused {len(summary.refused)}, "
                         f"{summary.skipped} indexed before)\x1b[K")
        sys.stderr.flush()

    with IndexStore(args.db) as store:
        summary = index(store, args.sources, engine, progress)
    if show:
        sys.stderr.write("\r\x1b[K")
    report = Report()
    for path, reason in summary.refused:
        report.findings.append(Finding("NS601", path, reason))
    for path, reason in summary.unreadable:
        report.findings.append(Finding("NS601", path, f"{reason} (not indexed; the next run tries again)"))
    report.data.update(db=str(args.db), found=summary.found, skipped=summary.skipped, indexed=summary.indexed,
                       duplicates=summary.duplicates, refused=len(summary.refused),
                       unreadable=len(summary.unreadable))
    report.note(f"{summary.found} artifacts found: {summary.indexed} indexed, {summary.skipped} indexed before, "
                f"{summary.duplicates} duplicates, {len(summary.refused)} refused, "
                f"{len(summary.unreadable)} unreadable; index {args.db}")
    return report


def _report(args: argparse.Namespace) -> Report:
    from .archive.census import report as make_report
    from .archive.render import html_page, summary_lines
    from .archive.store import IndexStore

    with IndexStore(args.db, create=False) as store:
        result = make_report(store, args.all_releases)
    findings = result["findings"]
    report = Report(findings=findings, data={"selection": result["selection"], "census": result["census"]})
    for line in summary_lines(result["census"], findings, result["selection"]):
        report.note(line)
    if args.html:
        target = Path(args.html)
        if not target.parent.is_dir():
            raise UsageError("the directory for --html does not exist", args.html)
        temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
        temporary.write_text(html_page(result["census"], findings, result["selection"]), encoding="utf-8")
        os.replace(temporary, target)
        report.note(f"HTML report written to {args.html}")
    return report
