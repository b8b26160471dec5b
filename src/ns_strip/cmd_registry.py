"""``ns-strip registry add|remove|sync|list|verify|rebuild``: per-namespace reference counts for
installed packages, so namespace directories go with the last package that uses them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .clishared import add_manifest_dir_argument, common_options_after_action
from .errors import BadInputError
from .manifest import PLACEHOLDER_MODES, check_package_name, host_path, load_manifest, namespace_name
from .registry import DEFAULT_DB, InstalledManifest, Registry, file_sha256
from .report import Report

ACTIONS = {
    "add": "register a package from its installed manifest (again on an upgrade)",
    "remove": "unregister a package; the last one to leave a namespace takes what was left there",
    "sync": "bring the registry in line with the installed manifests in one transaction (dpkg's file trigger)",
    "list": "show registered packages and the reference count of every namespace directory",
    "verify": "report drift between the registry and the files (exit 1); --repair settles it",
    "rebuild": "make the registry afresh from the installed manifests (e.g. after corruption)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="registry_action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    for name, help_text in ACTIONS.items():
        sub = actions.add_parser(name, help=help_text, description=help_text, parents=[common_options_after_action()])
        sub.add_argument("--root", metavar="DIR",
                         help="operate on the system image below DIR (database, manifests, site dirs)")
        sub.add_argument("--db", metavar="FILE", help=f"the registry database (default {DEFAULT_DB})")
        if name == "add":
            sub.add_argument("package", metavar="PKG")
            sub.add_argument("manifest", metavar="MANIFEST", help="the package's installed manifest")
        if name in ("add", "rebuild"):
            sub.add_argument("--placeholders", choices=PLACEHOLDER_MODES, default=None,
                             help="'pkgutil': keep a pkgutil-style __init__.py in each namespace directory "
                                  "while a package using it is installed (default: what the manifest says, "
                                  "else none)")
        if name == "remove":
            sub.add_argument("package", metavar="PKG")
        if name == "verify":
            sub.add_argument("--repair", action="store_true",
                             help="settle every directory first (finish interrupted commands, restore placeholders)")
        if name in ("rebuild", "sync"):
            add_manifest_dir_argument(sub)


def run(args: argparse.Namespace) -> Report:
    registry = Registry(args.root, args.db)
    report = Report()
    action = args.registry_action
    if action == "add":
        _add(registry, args, report)
    elif action == "remove":
        known = registry.remove(check_package_name(args.package))
        _describe_changes(registry, report)
        report.data.update(package=args.package, was_registered=known)
        if known:
            report.action(f"Unregistered {args.package}")
        else:
            report.note(f"{args.package} is not registered; nothing to remove")
    elif action == "sync":
        _sync(registry, args, report)
    elif action == "list":
        _list(registry, report)
    elif action == "verify":
        if not args.repair and not registry.db.exists():
            report.note(f"No registry at {registry.db}; nothing to verify")
        report.findings.extend(registry.verify(repair=args.repair))
        _describe_changes(registry, report)
        if not report.findings and registry.db.exists():
            report.note(f"Registry {registry.db} agrees with the files")
    else:
        _rebuild(registry, args, report)
    return report


def _add(registry: Registry, args: argparse.Namespace, report: Report) -> None:
    package = check_package_name(args.package)
    path = host_path(args.root, args.manifest, "MANIFEST")
    manifest = load_manifest(path, args.manifest, args.root)
    if manifest.package != package:
        raise BadInputError(f"manifest is for package {manifest.package}, not {package}", args.manifest)
    label = args.manifest if args.root is not None else Path(os.path.abspath(args.manifest)).as_posix()
    known = registry.add(manifest, label, file_sha256(path) or "", args.placeholders or manifest.placeholders)
    _describe_changes(registry, report)
    counts = {row.directory: len(row.packages) for row in registry.namespaces() if row.site_dir == manifest.site_dir}
    used = "; ".join(f"{namespace_name(d)} used by {counts.get(d, 0)}" for d in manifest.namespaces) or "no namespaces"
    report.action(f"{'Re-registered' if known else 'Registered'} {package} ({used})")
    report.data.update(package=package, was_registered=known, namespaces=[
        {"name": namespace_name(d), "directory": d, "site_dir": manifest.site_dir, "count": counts.get(d, 0)}
        for d in manifest.namespaces
    ])


def _list(registry: Registry, report: Report) -> None:
    packages = registry.packages()
    namespaces = registry.namespaces()
    report.data.update(packages=[p.to_json() for p in packages], namespaces=[n.to_json() for n in namespaces])
    for row in namespaces:
        placeholder = ", placeholder" if row.created_sha256 else ""
        report.action(f"{namespace_name(row.directory)} ({row.site_dir}/{row.directory}): "
                      f"{len(row.packages)} [{', '.join(row.packages)}]{placeholder}")
    for package in packages:
        report.detail(f"package {package.name}: manifest {package.manifest}, placeholders {package.placeholders}")
    if not packages:
        report.note(f"No packages registered in {registry.db}")


def installed_manifests(root: str | None, manifest_dir: str) -> tuple[Path, list[InstalledManifest]]:
    """Every ``*.json`` manifest in ``manifest_dir`` (in the target system), read and checked."""
    directory = host_path(root, manifest_dir, "--manifest-dir")
    if os.path.islink(directory) or not directory.is_dir():
        raise BadInputError("manifest directory does not exist or is a link; nothing was changed", str(directory))
    installed = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.json")):
        manifest = load_manifest(path, root=root)
        if manifest.package in seen:
            raise BadInputError(f"package {manifest.package} also has manifest {seen[manifest.package]}; "
                                "nothing was changed", str(path))
        seen[manifest.package] = path
        label = f"{manifest_dir.rstrip('/')}/{path.name}"
        installed.append(InstalledManifest(manifest, label, file_sha256(path) or "", manifest.placeholders))
    return directory, installed


def _rebuild(registry: Registry, args: argparse.Namespace, report: Report) -> None:
    directory, installed = installed_manifests(args.root, args.manifest_dir)
    moved = registry.rebuild(installed, args.placeholders)
    if moved:
        report.action(f"Moved the unreadable registry aside to {moved}")
    _describe_changes(registry, report)
    report.action(f"Rebuilt {registry.db} from {len(installed)} manifests in {directory}")
    report.data.update(packages=[item.manifest.package for item in installed], moved_aside=moved)


def _sync(registry: Registry, args: argparse.Namespace, report: Report) -> None:
    directory = host_path(args.root, args.manifest_dir, "--manifest-dir")
    # dpkg removes the directory with the last package that shipped a manifest: none installed.
    installed = [] if not os.path.lexists(directory) else installed_manifests(args.root, args.manifest_dir)[1]
    result = registry.sync(installed, args.manifest_dir)
    _describe_changes(registry, report)
    for verb, names in (("Registered", result.added), ("Re-registered", result.updated),
                        ("Unregistered", result.removed)):
        for name in names:
            report.action(f"{verb} {name}")
    if not (result.added or result.updated or result.removed):
        report.note(f"Registry {registry.db} already agrees with the manifests in {directory}")
    report.data.update(added=result.added, updated=result.updated, removed=result.removed)


def _describe_changes(registry: Registry, report: Report) -> None:
    if registry.recovered:
        report.action(f"Finished an interrupted registry command ({len(registry.recovered)} changes)")
    for change in registry.recovered + registry.changes:
        report.action(change.describe())
    report.data["changes"] = [c.to_json() for c in registry.changes]
    report.data["recovered"] = [c.to_json() for c in registry.recovered]
    report.findings.extend(registry.findings)
