"""``ns-strip strip``: remove legacy namespace files from a site dir or a wheel, keeping RECORD true."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import journal, setuptools_dep, sitelock, stripguard, syspath
from .clishared import (
    add_output_arguments,
    add_strip_manifest_arguments,
    check_strip_manifest_options,
    manifest_report,
    output_path,
)
from .errors import EXIT_ROLLED_BACK, ApplyError, UsageError
from .fdtree import FdTree
from .findings import Finding
from .plan import StripPlan, plan_strip
from .report import Report
from .scan import ScanResult, missing_files_finding, scan
from .sources import Source, TreeSource, is_wheel_path
# The wheel reader and writer (with installer and packaging) are imported for a wheel only.

# Findings that strip turns into actions: in its output they are the "Stripping" lines.
_ACTED_ON = ("NS101", "NS102", "NS103", "NS104")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DESTDIR", help="staging root; PATH is then absolute in the target system")
    parser.add_argument("path", metavar="PATH", help="site dir, or a wheel (with -o OUT.whl or --in-place)")
    parser.add_argument("--dry-run", "-n", action="store_true", help="show the plan, change nothing")
    parser.add_argument(
        "--keep", action="append", default=[], metavar="PATTERN",
        help="never strip a file whose path or namespace matches this glob (repeatable)",
    )
    add_output_arguments(parser)
    parser.add_argument("--drop-setuptools-dep", action="store_true",
                        help="also drop a Requires-Dist on setuptools needed only for namespaces (NS403)")
    add_strip_manifest_arguments(parser)
    # issue 12: the target interpreter's whole sys.path, and the opt-in import check.
    syspath.add_python_argument(parser)
    parser.add_argument(
        stripguard.ALLOW_OPTION, action="append", default=[], metavar="NAMESPACE",
        help="strip this namespace (a glob) even where that leaves it hidden behind a legacy declaration "
             "on another sys.path entry (NS130)",
    )
    parser.add_argument(
        "--check-imports", action="store_true",
        help="import every top-level name and namespace portion with the target interpreter before and "
             "after (on a view of the stripped tree, before anything changes); a regression stops the strip "
             "(NS135, exit 4). Runs the packages' code: opt-in",
    )


def run(args: argparse.Namespace) -> Report:
    check_strip_manifest_options(args, is_wheel_path(args.path))
    if args.check_imports and is_wheel_path(args.path):
        raise UsageError("--check-imports works on a site dir (install the wheel, then strip it there)")
    if is_wheel_path(args.path):
        from .wheels import WheelSource

        output = output_path(args, wheel=True, required=not args.dry_run)
        with WheelSource.open(args.path) as wheel:
            return _strip(args, wheel, Report(), None, output)
    output_path(args, wheel=False)
    source = TreeSource.open(args.path, args.root)
    # The lock is held from before the tree is read until the change is complete: a second
    # strip waits, and recovers only a journal that no live process holds. A dry run changes
    # nothing and shares it, so it never reports on a change half done.
    with sitelock.locked_site(source.site_dir, source.root, shared=args.dry_run) as tree:
        report = Report()
        recovered = None
        if journal.pending(tree):
            journal.inspect(tree)  # a journal ns-strip did not write is refused (exit 3), untouched
            if args.dry_run:
                raise ApplyError(
                    "an interrupted strip left its journal here; run without --dry-run to complete or roll it back",
                    str(journal.journal_dir(source.site_dir)),
                )
            recovered = journal.recover(tree)
            report.action(f"Recovered an interrupted strip in {args.path}: {recovered}")
            source = TreeSource.open(args.path, args.root)
        report = _strip(args, source, report, recovered, None, tree)
        if args.manifest_package and not args.dry_run:
            report.extend(manifest_report(args.path, args.root, args.manifest_package, args.manifest_dir))
    return report


def _strip(args: argparse.Namespace, source: Source, report: Report, recovered: str | None,
           output: Path | None, tree: FdTree | None = None) -> Report:
    """Scan, plan and apply: through the journal for a site dir, by the wheel writer for a wheel."""
    result = stripguard.guard_strip(args, scan(source, records="rewritten"), report)
    plan = plan_strip(result, args.keep)
    for finding in result.findings:
        if finding.code not in _ACTED_ON:
            still = _still_true(finding, plan)
            if still is not None:
                report.findings.append(still)
    dropped = _setuptools_requirement(args, result, plan, report)
    expected = None
    if tree is not None and not args.dry_run and not plan.is_empty:
        # What the plan saw, checked again before every step: a file or directory swapped in
        # between (a link out of the root, a hybrid for a pure __init__.py) is never acted on.
        sitelock.check_still_named(tree)
        assert isinstance(source, TreeSource)
        expected = journal.identities_at_plan(
            tree, journal.planned_paths(plan.removed_paths, plan.rewrites, plan.empty_dirs),
            read=source.read_identities)
    _describe(plan, report, args.dry_run)
    for line in dropped:
        report.action(("[dry run] " if args.dry_run else "") + line)
    if getattr(args, "check_imports", False) and not plan.is_empty and _imports_break(args, source, plan, report):
        if not args.dry_run:
            report.exit_code = EXIT_ROLLED_BACK
            report.note(f"Nothing was changed in {args.path}: the strip would break imports (NS135)")
            report.data.update({"removed": [], "rewritten": [], "dropped_rows": [], "kept": [],
                                "dry_run": False, "recovered": recovered})
            return report
    if not args.dry_run:
        if tree is not None:
            if not plan.is_empty:
                journal.apply(tree, plan.removed_paths, plan.rewrites, plan.empty_dirs, expected=expected)
        else:
            from .wheels import apply_change

            apply_change(source, output, plan.removed_paths, plan.rewrites, plan.empty_dirs)
    if plan.is_empty:
        report.note(f"Nothing to strip in {args.path}")
    report.data.update({
        "removed": plan.removed_paths + [d + "/" for d in plan.empty_dirs],
        "rewritten": sorted(plan.rewrites),
        "dropped_rows": plan.stale_rows,
        "kept": [k.to_json() for k in plan.kept],
        "dry_run": bool(args.dry_run),
        "recovered": recovered,
    })
    if not isinstance(source, TreeSource):  # a wheel
        report.data["output"] = None if output is None or args.dry_run else str(output)
    return report


def _imports_break(args: argparse.Namespace, source: Source, plan: StripPlan, report: Report) -> bool:
    """--check-imports (issue 12): NS135 for each module the plan would break; whether any."""
    from . import importcheck
    from .distributions import load_distributions

    interpreter = syspath.resolve(args.python, args.path, args.root)
    assert isinstance(source, TreeSource)
    entry = args.path if args.root else str(Path(args.path).absolute())
    names, broken = importcheck.check_strip(interpreter, source, entry, load_distributions(source),
                                            plan.removed_paths, plan.rewrites, plan.empty_dirs)
    report.note(f"Checked {len(names)} imports with {interpreter.executable}: {len(broken)} broken by the strip")
    report.findings.extend(importcheck.regression_finding(item, interpreter) for item in broken)
    return bool(broken)


def _setuptools_requirement(args: argparse.Namespace, result: ScanResult, plan: StripPlan,
                            report: Report) -> list[str]:
    """NS403: report a setuptools requirement only namespaces needed, or drop it when asked."""
    report.findings.extend(setuptools_dep.pkg_resources_users(result, plan.removed_paths))  # NS405
    if not args.drop_setuptools_dep:
        found = setuptools_dep.namespace_only_requirements(result, plan.removed_paths + plan.stale_rows)
        report.findings.extend(item.finding() for item in found)
        return []
    rewrites, described = setuptools_dep.drop_rewrites(result, plan.removed_paths + plan.stale_rows)
    plan.rewrites.update(rewrites)
    if not described:
        report.note(f"No setuptools requirement needed only for namespaces in {args.path}")
    return described


def _still_true(finding: Finding, plan: StripPlan) -> Finding | None:
    """A scan finding as it stands after the plan: NS401 loses the rows strip drops."""
    if finding.code != "NS401":
        return finding
    gone = [path for path in finding.details["missing"] if path not in plan.stale_rows]
    return missing_files_finding(finding.path, finding.distributions[0], gone) if gone else None


def _describe(plan: StripPlan, report: Report, dry_run: bool) -> None:
    prefix = "[dry run] " if dry_run else ""
    for removal in plan.removals:
        if removal.description is not None:
            report.action(f"{prefix}Stripping {removal.description} ({removal.path})")
        else:
            report.detail(f"{prefix}Removing {removal.path}")
    for path in plan.empty_dirs:
        report.detail(f"{prefix}Removing empty directory {path}/")
    if plan.stale_rows:
        report.action(f"{prefix}Dropping RECORD rows of namespace files already removed: {', '.join(plan.stale_rows)}")
    for path in sorted(plan.rewrites):
        report.action(f"{prefix}Updating {path}")
    for kept in plan.kept:
        if kept.code == "keep":
            report.note(f"Keeping {kept.path} ({kept.reason})")
