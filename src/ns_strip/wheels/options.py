"""``-o``/``--in-place``: where a command that changes a wheel writes it, checked against the
kind of PATH. Kept apart from the modules that read and write wheels (which bring installer and
packaging): ``strip`` and ``import-names`` add these options, and check them, for a site dir
too."""

from __future__ import annotations

import stat
from pathlib import Path

from ..errors import UsageError
from ..sources import stat_argument

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    import argparse


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``-o``/``--in-place``: where a command that changes a wheel writes it."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT.whl",
                       help="for a wheel: write the result here (a directory: keep the wheel's file name)")
    where.add_argument("--in-place", action="store_true", help="for a wheel: replace it atomically")


def output_path(args: argparse.Namespace, wheel: bool, required: bool = True) -> Path | None:
    """Where to write, checking ``-o``/``--in-place`` against the kind of PATH (exit 2 if wrong)."""
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
    from .archive import WHEEL_NAME_FORM, is_wheel_filename  # installer's name parser: only for a wheel

    if not is_wheel_filename(target.name):
        raise UsageError(f"the output must be a directory or a wheel file name ({WHEEL_NAME_FORM})", output)
    parent = stat_argument(target.parent)
    if parent is None or not stat.S_ISDIR(parent.st_mode):
        raise UsageError("the output's directory does not exist", output)
    return target
