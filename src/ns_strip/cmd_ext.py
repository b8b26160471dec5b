"""``ns-strip ext PATH...``: inspect compiled extension modules.

For each extension in the files, directories and wheels given: the module it is imported as,
the init functions it exports, its format, machine and tag; findings NS201-NS205. With
``--rename``, untagged extensions get the tag of the interpreter they are built for.

A bad binary is an NS205 finding (exit 1), like every other problem with an extension: one
malformed file does not hide what is wrong with the others.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from .errors import UsageError
from .extensions import (
    check_extension,
    inspect_extension_file,
    is_shared_library,
    module_name,
    namespace_takeovers,
    python_target,
)
from .extnames import is_extension_filename, parse_extension_filename
from .extsources import ExtensionTree, init_reader, namespace_packages, read_records, read_tree, read_wheel
from .report import Report
from .sources import TreeSource, iter_files, stat_argument

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    import argparse

    from .extensions import ExtensionInfo, PythonTarget
    from .extrename import Rename
    from .findings import Finding

# When run() returns, ext holds nothing but its report: no file open, no atexit handler (a
# rename's RECORDs are written and closed, its lock is released with the process). The command
# line leaves without tearing the interpreter down (see cli.run).
EXIT_WITHOUT_TEARDOWN = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="extension modules (.so, .pyd), directories or wheels holding them"
    )
    parser.add_argument(
        "--rename",
        action="store_true",
        help="give untagged extensions (foo.so) the ABI tag of the interpreter, as dh_python3 does, "
        "when the init function they export matches their name; RECORD rows follow",
    )
    parser.add_argument(
        "--python-tag",
        metavar="TAG",
        help="the tag --rename adds, e.g. cpython-312-aarch64-linux-gnu, abi3 or cp312-win_amd64 "
        "(default: the running interpreter's first extension suffix)",
    )
    parser.add_argument(
        "-n", "--dry-run", action="store_true", help="with --rename: say what would be renamed, change nothing"
    )
    parser.add_argument(
        "-j", "--jobs", type=int, metavar="N",
        help="read the extension modules of a large directory in N processes "
        "(default: the CPUs idle when it starts; 1: in this process only)",
    )


def run(args: argparse.Namespace) -> Report:
    if not args.rename:
        return _run(args)
    # --rename changes the directories it reads: each is locked before it is read, so a strip
    # running there is waited for instead of being read half done.
    from .extrename import locked_roots

    with locked_roots(args.paths, shared=bool(args.dry_run)):
        return _run(args)


def _run(args: argparse.Namespace) -> Report:
    if (args.python_tag or args.dry_run) and not args.rename:
        raise UsageError("--python-tag and --dry-run go with --rename")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    tag: tuple[str | None, str | None] = (None, None)
    if args.rename:
        # extrename brings RECORD rewriting (metadata_edit: installer, packaging), which a plain
        # inspection never needs: imported only for --rename.
        from .extrename import default_tag, parse_tag_option

        tag = parse_tag_option(args.python_tag) if args.python_tag else default_tag()
    report = Report()
    report.data["extensions"] = []
    if args.rename:
        report.data["renamed"] = []
        report.data["dry_run"] = bool(args.dry_run)
    for text in args.paths:
        path = Path(text)
        root, tree = _read(path, args.rename, args.jobs)
        findings = []
        # The interpreter a file is installed for depends on its directory only (no extension's
        # file name looks like python3.11): one lookup per directory, not per file.
        targets: dict[str, PythonTarget | None] = {}
        for info in tree.extensions:
            target = None
            if root is not None:
                directory = posixpath.dirname(info.path)
                if directory not in targets:
                    targets[directory] = python_target(os.path.abspath(root / directory))
                target = targets[directory]
            findings += check_extension(info, target=target)
        findings += namespace_takeovers(tree.extensions, tree.namespaces)
        if args.rename and root is not None:
            findings = _rename(root, tree, findings, tag, bool(args.dry_run), report)
        elif len(args.paths) > 1 and not path.is_dir() and root is not None:
            findings, tree = _as_given(text, findings, tree)
        report.findings += sorted(findings, key=lambda finding: (finding.path, finding.code))
        # The JSON rows and the detail lines are made only when they will be shown (--json,
        # -v): for a directory of small extensions they were a tenth of the time.
        if getattr(args, "json", True):
            report.data["extensions"] += [info.to_json() for info in tree.extensions]
        if getattr(args, "verbose", True):
            for line in tree.skipped:
                report.detail(f"Skipping {line}")
            for info in tree.extensions:
                report.detail(_describe(info))
        report.note(f"{len(tree.extensions)} extension module(s) in {text}")
    return report


def _read(path: Path, renaming: bool, jobs: int | None) -> tuple[Path | None, ExtensionTree]:
    """The root that paths are relative to (None inside a wheel) and what it holds."""
    found = stat_argument(path)
    if found is None and not os.path.islink(path):
        raise UsageError(f"{path}: no such file or directory")
    if found is not None and stat.S_ISDIR(found.st_mode):
        if jobs is None:
            from .forkmap import idle_cpus

            jobs = idle_cpus()
        return path, _without_shared_libraries(read_tree(path, jobs))
    if path.suffix == ".whl":
        # Whatever it holds: an empty file, one that is not a zip or a FIFO is refused by the
        # wheel reader (exit 3), as scan and strip refuse it.
        if renaming:
            raise UsageError(f"{path}: --rename works on directories and files, not inside wheels")
        return None, _without_shared_libraries(read_wheel(path))
    if is_extension_filename(path.name):
        root = path.parent
        owner = read_records(root).get(path.name)
        info = inspect_extension_file(path, path.name, distributions=(owner,) if owner else (), follow_links=True)
        return root, ExtensionTree([info], _sibling_namespaces(root, info), [])
    raise UsageError(f"{path}: not a directory, a wheel, or an extension module (.so, .pyd)")


def _as_given(text: str, findings: list[Finding], tree: ExtensionTree) -> tuple[list[Finding], ExtensionTree]:
    """A file named on a command line of several paths is shown by the path the user gave, not
    its bare name: files from several directories would otherwise be indistinguishable. (One
    file alone keeps the contract's path, relative to its directory.)"""
    [info] = tree.extensions
    findings = [f.replace(path=text) if f.path == info.path else f for f in findings]
    tree.extensions = [info.replace(path=text)]
    return findings, tree


def _without_shared_libraries(tree: ExtensionTree) -> ExtensionTree:
    """A walk meets ``libfoo.so`` files that are not extensions; a file named by the user is
    always inspected."""
    skipped = [info for info in tree.extensions if is_shared_library(info)]
    tree.skipped += [f"{info.path}: a shared library (no tag, no init function), not an extension module"
                     for info in skipped]  # fmt: skip
    tree.extensions = [info for info in tree.extensions if info not in skipped]
    return tree


def _sibling_namespaces(root: Path, info: ExtensionInfo) -> set[str]:
    """For a single file ``foo.<tag>.so``: whether ``foo/`` beside it is a namespace package."""
    directory = root / info.name.module
    if not info.module or not directory.is_dir() or directory.is_symlink():
        return set()
    # Listed without recursion and without following links; read bounded, never through a
    # link that leaves foo/, never from a FIFO.
    tree = TreeSource(directory)
    prefix = info.name.module + "/"
    files = [prefix + path for path in iter_files(tree)]
    read_init = init_reader(tree)
    return namespace_packages(files, lambda relpath: read_init(relpath[len(prefix):]))


def _rename(
    root: Path,
    tree: ExtensionTree,
    findings: list[Finding],
    tag: tuple[str | None, str | None],
    dry_run: bool,
    report: Report,
) -> list[Finding]:
    from .extrename import apply_renames, plan_rename

    renames: list[Rename] = []
    refusals: list[Finding] = []
    for info in tree.extensions:
        target = python_target(os.path.abspath(root / info.path))
        rename, refusal = plan_rename(info, *tag, target)
        if rename:
            renames.append(rename)
        if refusal:
            refusals.append(refusal)
    records = apply_renames(root, renames, dry_run=dry_run)
    prefix = "[dry run] " if dry_run else ""  # as 'strip' says it
    for rename in renames:
        report.action(f"{prefix}Renaming {rename.source} to {rename.target}")
        report.data["renamed"].append({"from": rename.source, "to": rename.target})
    for record in records:
        report.action(f"{prefix}Updating {record}")
    moved = {rename.source: rename.target for rename in renames}
    tree.extensions = [_moved(info, moved[info.path]) if info.path in moved else info for info in tree.extensions]
    # A refusal explains the same problem as the check's finding of its code, in rename terms.
    replaced = {(refusal.code, refusal.path) for refusal in refusals}
    kept = [f for f in findings if (f.code, f.path) not in replaced and not (f.code == "NS204" and f.path in moved)]
    return kept + refusals


def _moved(info: ExtensionInfo, path: str) -> ExtensionInfo:
    name = parse_extension_filename(os.path.basename(path))
    return info.replace(path=path, name=name, module=module_name(path))


def _describe(info: ExtensionInfo) -> str:
    if info.binary is None:
        return f"{info.path}: unreadable ({info.problem})"
    exported = ", ".join(info.exported) or "nothing"
    return (
        f"{info.path}: module {info.module or info.name.module}, {info.binary.format} {info.binary.machine}, "
        f"tag {info.name.tag or 'none'}, exports {exported}"
    )
