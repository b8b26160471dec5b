"""``ns-strip import-names``: PEP 794 Import-Name / Import-Namespace from the contents,
compared with METADATA, and written into it with ``--write``."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import journal, sitelock
from .clishared import add_output_arguments, output_path, reading_tree
from .distributions import load_distributions
from .errors import UsageError
from .fdtree import FdTree, Identity
from .importnames import ImportLayout, compute_layout, layout_findings, matches_declaration
from .metadata_edit import rewrite_record, set_import_fields
from .report import Report
from .scan import missing_record_files
from .sources import Source, TreeSource, is_wheel_path
from .wheels import WheelSource, apply_change


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DESTDIR", help="staging root; PATH is then absolute in the target system")
    parser.add_argument("path", metavar="PATH", help="site dir (every distribution in it) or wheel")
    parser.add_argument("--write", action="store_true",
                        help="write the computed fields into METADATA (Metadata-Version 2.5), keeping RECORD true")
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> Report:
    if not args.write and (args.output or args.in_place):
        raise UsageError("-o/--in-place only say where --write puts a wheel")
    if is_wheel_path(args.path):
        output = output_path(args, wheel=True, required=args.write)
        with WheelSource.open(args.path) as wheel:
            return _import_names(args, wheel, output)
    output_path(args, wheel=False)
    if not args.write:
        with reading_tree(args.path, args.root) as source:
            return _import_names(args, source, None)
    site = TreeSource.open(args.path, args.root)
    # Held from before the tree is read until METADATA and RECORD are written, as strip does.
    with sitelock.locked_site(site.site_dir, site.root) as tree:
        if journal.pending(tree):
            journal.inspect(tree)  # a journal ns-strip did not write is refused (exit 3), untouched
        with reading_tree(args.path, args.root) as source:
            return _import_names(args, source, None, tree)


def _import_names(args: argparse.Namespace, source: Source, output: Path | None,
                  tree: FdTree | None = None) -> Report:
    layouts = [compute_layout(source, dist) for dist in load_distributions(source)]
    report = Report(data={"distributions": [dict(layout.to_json(), source=args.path) for layout in layouts]})
    if isinstance(source, TreeSource):
        report.findings.extend(missing_record_files(source, [layout.distribution for layout in layouts])[1])
    for layout in layouts:
        report.findings.extend(layout_findings(layout))
        report.note(_describe(layout))
    if not layouts:
        report.note(f"{args.path}: no distribution found")
    if args.write:
        rewritten = _write(source, layouts, output, report, tree)
        report.data["rewritten"] = rewritten
        if isinstance(source, WheelSource):
            report.data["output"] = str(output)
    return report


def _describe(layout: ImportLayout) -> str:
    dist = layout.distribution
    text = f"{dist.name} {dist.version}: Import-Name: {', '.join(layout.import_names) or '(none)'}"
    if layout.import_namespaces:
        text += f"; Import-Namespace: {', '.join(layout.import_namespaces)}"
    if layout.names_from != "files":
        text += f" (from {layout.names_from}: this egg-info lists no files)"
    elif not layout.declares:
        text += " (METADATA declares none)"
    return text


def _write(source: Source, layouts: list[ImportLayout], output: Path | None, report: Report,
           tree: FdTree | None) -> list[str]:
    rewrites: dict[str, bytes] = {}
    expected: dict[str, Identity] = {}
    for layout in layouts:
        dist = layout.distribution
        if layout.metadata_path is None:
            report.note(f"{dist.name}: egg-info metadata is not rewritten")
            continue
        if matches_declaration(layout):
            report.note(f"{dist.name}: METADATA already declares these import names")
            continue
        if tree is not None:
            # What is rewritten, as it is before it is read: checked again before each step,
            # and now against what the first reads found (the RECORD's rows come from then).
            assert isinstance(source, TreeSource)
            expected.update(journal.identities_at_plan(tree, [p for p in (layout.metadata_path, dist.record_path) if p],
                                                       read=source.read_identities))
        metadata = set_import_fields(source.read_bytes(layout.metadata_path), layout.metadata_path,
                                     layout.import_names, layout.import_namespaces)
        rewrites[layout.metadata_path] = metadata
        if dist.record_path is not None:
            rewrites[dist.record_path] = rewrite_record(dist.record_lines, (), {layout.metadata_path: metadata})
        report.action(f"Writing Import-Name/Import-Namespace of {dist.name} ({layout.metadata_path})")
    if tree is None:
        apply_change(source, output, (), rewrites)
    elif rewrites:
        sitelock.check_still_named(tree)
        journal.apply(tree, (), rewrites, expected=expected)
    return sorted(rewrites)
