"""What the command modules share: the parser they are built with, the common options, how a
command that only reads opens the trees and wheels it reads, and the manifest that both
``manifest`` and ``strip`` write.

It sits below ``cli`` and every ``cmd_*`` module: no command imports another command's module,
and none imports ``cli``. Every command's start-up imports it, so at module level it needs
only argparse; each helper imports what it uses when it is called.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from .errors import UsageError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pathlib import Path

    from .fdtree import FdTree
    from .report import Report
    from .sources import Source, TreeSource

# -- the parser -------------------------------------------------------------------------------


def help_width() -> int:
    """The width argparse's help formatter wraps to when given none: the terminal's columns
    (``COLUMNS``, else the size of stdout's terminal, else 80) less 2, as
    ``shutil.get_terminal_size`` and ``HelpFormatter`` work it out. Given to every formatter:
    argparse makes one for each option it adds, and without a width each does ``import
    shutil``, which brings fnmatch, bz2 and lzma (about 3.5 ms of every command's start-up)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told its width (:func:`help_width`)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, help_width() if width is None else width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The top-level parser's: its epilog (the table of finding codes) is printed as written."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so errors print in one format.

    Every parser made through it (sub-parsers, and theirs, are made with the parser's own
    class) formats with a :class:`HelpFormatter` unless given another formatter class."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 (argparse's own)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def common_options() -> argparse.ArgumentParser:
    """The options every command takes (a parent parser)."""
    common = ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    group.add_argument("--select", metavar="CODES", help="report only these finding codes (prefixes, comma separated)")
    group.add_argument("--ignore", metavar="CODES", help="do not report these finding codes (prefixes, comma separated)")
    group.add_argument("-q", "--quiet", action="store_true", help="print only actions, warnings and errors")
    group.add_argument("-v", "--verbose", action="store_true", help="print details of every step")
    return common


def common_options_after_action() -> argparse.ArgumentParser:
    """The common options, accepted after a command's action too (``registry list --json``).

    Their defaults are suppressed here so that this parser does not overwrite a value given
    before the action; the command's own parser supplies the defaults.
    """
    common = common_options()
    for action in common._actions:
        action.default = argparse.SUPPRESS
    return common


# -- reading trees and wheels -----------------------------------------------------------------


@contextlib.contextmanager
def reading(paths: Sequence[str], root: str | None) -> Iterator[list[Source]]:
    """The wheels and site dirs ``paths`` name, opened for a command that only reads them.

    Each site dir is held with its lock *shared* until the block ends, as ``strip --dry-run``
    holds it: a change in progress there (``strip``, ``ext --rename``, ``import-names
    --write``) is waited for, at most ``NS_STRIP_LOCK_TIMEOUT`` seconds, so a reader never
    reports on a tree that is half changed. Readers do not wait for each other. The locks are
    taken in one fixed order (see :func:`sitelock.locked_sites`). A journal still there once
    the lock is held was left by an interrupted change: exit 4, or 3 for one no ns-strip could
    have left. Wheels are validated when opened; everything opened is closed when the block ends.
    """
    from . import sitelock
    from .sources import TreeSource, is_wheel_path

    with contextlib.ExitStack() as stack:
        sources: list[Source] = []
        trees: list[TreeSource] = []
        for path in paths:
            if is_wheel_path(path):
                from .wheels import WheelSource  # imported only for wheels: most runs are on a tree

                sources.append(stack.enter_context(WheelSource.open(path)))
            else:
                tree = stack.enter_context(contextlib.closing(TreeSource.open(path, root)))
                sources.append(tree)
                trees.append(tree)
        locked = stack.enter_context(sitelock.locked_sites([(tree.site_dir, tree.root) for tree in trees],
                                                           shared=True))
        for tree, held in zip(trees, locked):
            refuse_journal(held, tree.site_dir)
        yield sources


@contextlib.contextmanager
def reading_tree(path: str, root: str | None) -> Iterator[TreeSource]:
    """One site dir, opened and held as :func:`reading` does (``path`` is never taken for a wheel)."""
    from . import sitelock
    from .sources import TreeSource

    with contextlib.closing(TreeSource.open(path, root)) as tree, \
            sitelock.locked_site(tree.site_dir, tree.root, shared=True) as held:
        refuse_journal(held, tree.site_dir)
        yield tree


def refuse_journal(held: FdTree, site_dir: Path) -> None:
    """Refuse a site dir (``held``: its locked tree) with a journal: exit 4 for one an
    interrupted change left (``strip`` completes or rolls it back), exit 3 for one that no
    ns-strip could have left (planted, damaged, a link), as strip refuses it."""
    from .journalplan import JOURNAL_DIR

    if held.lstat(JOURNAL_DIR) is None:
        return
    from . import journal  # its syncing and signal handling only for a tree that has a journal
    from .errors import ApplyError

    journal.inspect(held)
    raise ApplyError(
        "an interrupted strip left its journal here; run 'ns-strip strip' on it to complete "
        "or roll back that change first",
        str(journal.journal_dir(site_dir)),
    )


# -- where a changed wheel goes ('strip' and 'import-names --write') --------------------------


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``-o``/``--in-place``: where a command that changes a wheel writes it."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT.whl",
                       help="for a wheel: write the result here (a directory: keep the wheel's file name)")
    where.add_argument("--in-place", action="store_true", help="for a wheel: replace it atomically")


def output_path(args: argparse.Namespace, wheel: bool, required: bool = True) -> Path | None:
    """Where to write, checking ``-o``/``--in-place`` against the kind of PATH (exit 2 if wrong)."""
    import stat
    from pathlib import Path

    from .sources import stat_argument

    output = getattr(args, "output", None)
    in_place = getattr(args, "in_place", False)
    if not wheel:
        if output or in_place:
            raise UsageError("-o/--in-place apply to wheels only; a site dir is changed where it is", args.path)
        return None
    if in_place:
        return Path(args.path)
    if not output:
        if required:
            raise UsageError("a wheel is not changed in place unless asked: give -o OUT.whl or --in-place", args.path)
        return None
    target = Path(output)
    found = stat_argument(target)
    if found is not None and stat.S_ISDIR(found.st_mode):
        return target / Path(args.path).name
    from .wheels.archive import WHEEL_NAME_FORM, is_wheel_filename  # installer's name parser: only for a wheel

    if not is_wheel_filename(target.name):
        raise UsageError(f"the output must be a directory or a wheel file name ({WHEEL_NAME_FORM})", output)
    parent = stat_argument(target.parent)
    if parent is None or not stat.S_ISDIR(parent.st_mode):
        raise UsageError("the output's directory does not exist", output)
    return target


# -- manifests ('manifest', and 'strip --manifest-package') -----------------------------------


def add_manifest_dir_argument(parser: argparse.ArgumentParser) -> None:
    from .manifest import DEFAULT_MANIFEST_DIR

    parser.add_argument(
        "--manifest-dir", default=DEFAULT_MANIFEST_DIR, metavar="DIR",
        help=f"where manifests are installed, in the target system (default {DEFAULT_MANIFEST_DIR})",
    )


def add_strip_manifest_arguments(parser: argparse.ArgumentParser) -> None:
    """``strip --manifest-package PKG [--manifest-dir DIR]``: write the manifest after stripping."""
    parser.add_argument("--manifest-package", metavar="PKG",
                        help="after stripping a site dir, write PKG's namespace manifest (see 'ns-strip manifest')")
    add_manifest_dir_argument(parser)


def check_strip_manifest_options(args: argparse.Namespace, wheel: bool) -> None:
    """Refuse a bad manifest request before strip changes anything."""
    if args.manifest_package is None:
        return
    if wheel:
        raise UsageError("--manifest-package describes an installed site dir, not a wheel")
    from .manifest import default_manifest_path, host_path

    host_path(args.root, default_manifest_path(args.manifest_dir, args.manifest_package), "--manifest-dir")


def manifest_report(path: str, root: str | None, package: str, manifest_dir: str, output: str | None = None,
                    placeholders: str = "none") -> Report:
    """Scan the site dir afresh and write the package's manifest; used by 'manifest' and 'strip'."""
    import posixpath
    from pathlib import Path

    from .manifest import build_manifest, check_package_name, default_manifest_path, host_path, summary, write_manifest
    from .report import Report
    from .scan import scan

    check_package_name(package)
    with reading_tree(path, root) as tree:
        result = scan(tree)
    site_dir = posixpath.normpath(path) if root is not None else Path(os.path.abspath(path)).as_posix()
    manifest = build_manifest(result, package, site_dir, placeholders)
    if output is not None:
        target = Path(output)
        write_manifest(manifest, target)
    else:
        target = host_path(root, default_manifest_path(manifest_dir, package), "--manifest-dir")
        write_manifest(manifest, target, root)
    report = Report()
    report.action(f"Writing manifest of {package} to {target} ({summary(manifest)})")
    report.data["manifest"] = manifest.to_json()
    report.data["manifest_path"] = str(target)
    return report
