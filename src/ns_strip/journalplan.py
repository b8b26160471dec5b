"""The steps of a journalled change, and ``plan.json``: written by the apply, read back as
untrusted input by a recovery.

A journal found in a site dir may have been planted (shipped by a wheel, left by a build
system), so reading a plan checks everything before any of it is used: a list of steps, each an
object with known keys only, an action of the four, paths that are strings, relative,
normalised, inside the site dir and outside the journal, a mode that is a permission mode. Any
other plan is a :class:`PlanError` naming the first problem, and nothing is done with it.
"""

from __future__ import annotations

import os
import posixpath

from .slotted import FrozenSlotted, set_field

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from typing import Any

JOURNAL_DIR = ".ns-strip-journal"
PLAN = f"{JOURNAL_DIR}/plan.json"
# A strip of 5,000 distributions plans about 20,000 steps (2 MiB). A recovery parses the plan
# under the same memory bound as everything else ns-strip reads: a plan of this size is at most
# a few hundred MiB of objects however it is crafted.
MAX_PLAN_BYTES = 8 << 20
MAX_PATH_CHARS = 4096
# Directories a plan path may go through. A namespace package is a few levels deep, but a tree
# thousands deep must still strip (issue 11, item 8), and MAX_PATH_CHARS already bounds a path
# to about this many one-letter directories. The checks of a rollback open each directory once
# (fdtree caches them), so a planted plan of thousands of such paths stays bounded; what
# ns-strip plans deeper than this it refuses to journal.
MAX_PATH_DEPTH = 2048
ACTIONS = ("remove", "replace", "move", "rmdir")
_KEYS = {"action", "path", "mode", "target"}


def journal_present(base: str | os.PathLike[str]) -> bool:
    """Whether anything is at the journal's place in the directory ``base`` (a link or a file
    too: it must be looked at). Here rather than in :mod:`.journal`, so that 'scan', which only
    refuses a tree with a journal, does not import the journal's locking and syncing."""
    return os.path.lexists(os.path.join(base, JOURNAL_DIR))


class Step(FrozenSlotted):
    __slots__ = ("action", "path", "mode", "target")

    action: str  # remove | replace | move | rmdir
    path: str  # relative to the journalled directory
    mode: int | None  # rmdir: the directory's mode, to recreate it on rollback
    target: str | None  # move: the new path

    def __init__(self, action: str, path: str, mode: int | None = None, target: str | None = None) -> None:
        set_field(self, "action", action)
        set_field(self, "path", path)
        set_field(self, "mode", mode)
        set_field(self, "target", target)


class PlanError(ValueError):
    """``plan.json`` is not a plan this program wrote."""


def encode_plan(steps: list[Step]) -> bytes:
    import json  # here and in decode_plan: only a strip and a recovery write or read a plan

    items = [{k: v for k, v in zip(Step.__slots__, step.field_values()) if v is not None} for step in steps]
    return json.dumps(items, separators=(",", ":")).encode()


def decode_plan(data: bytes) -> list[Step]:
    """The steps of a ``plan.json``, checked; raises PlanError."""
    import json

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(f"not UTF-8 (byte {exc.start})") from exc
    counter = iter(range(1 << 62))
    try:
        # Each object is checked as soon as it is parsed, so a plan of a million bad objects
        # stops at the first instead of being built whole.
        raw = json.loads(text, object_pairs_hook=lambda pairs: _step(pairs, next(counter)),
                         parse_constant=_no_constant)
    except RecursionError as exc:
        raise PlanError("nested too deeply") from exc
    except PlanError:
        raise
    except ValueError as exc:
        raise PlanError(f"not JSON ({exc})") from exc
    if not isinstance(raw, list):
        raise PlanError(f"not a list of steps but {_kind(raw)}")
    for index, item in enumerate(raw):
        if not isinstance(item, Step):
            raise PlanError(f"step {index} is {_kind(item)}, not an object")
    return raw


def _no_constant(name: str) -> Any:
    raise PlanError(f"not JSON ({name})")


def _kind(value: Any) -> str:
    if isinstance(value, Step):
        return "an object"
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__)


def _step(pairs: list[tuple[str, Any]], index: int) -> Step:
    where = f"object {index}"
    keys = [key for key, _ in pairs]
    unknown = sorted(set(keys) - _KEYS)
    if unknown:
        raise PlanError(f"{where}: unknown key {unknown[0]!r}")
    if len(set(keys)) != len(keys):
        raise PlanError(f"{where}: a key given twice")
    fields = dict(pairs)
    action = fields.get("action")
    if action not in ACTIONS:
        raise PlanError(f"{where}: action {_short(action)} is not one of {', '.join(ACTIONS)}")
    path = check_path(fields.get("path"), f"{where}: path")
    mode = fields.get("mode")
    if mode is not None and (type(mode) is not int or not 0 <= mode <= 0o7777 or action != "rmdir"):
        raise PlanError(f"{where}: mode {_short(mode)} is not a permission mode of an rmdir step")
    target = fields.get("target")
    if action == "move":
        target = check_path(target, f"{where}: target")
    elif target is not None:
        raise PlanError(f"{where}: a target on a {action} step")
    return Step(action, path, mode, target)


def check_path(value: Any, where: str) -> str:
    """A plan path: a string, relative, normalised, inside the directory, not in the journal."""
    if not isinstance(value, str):
        raise PlanError(f"{where} is {_kind(value)}, not a string")
    if not value or len(value) > MAX_PATH_CHARS or "\0" in value:
        raise PlanError(f"{where} {_short(value)} is empty, too long or has a NUL")
    if value.startswith("/"):
        raise PlanError(f"{where} {_short(value)} is absolute")
    parts = value.split("/")
    if ".." in parts:
        raise PlanError(f"{where} {_short(value)} climbs out with '..'")
    if posixpath.normpath(value) != value or "." in parts:
        raise PlanError(f"{where} {_short(value)} is not in normal form")
    if len(parts) > MAX_PATH_DEPTH:
        raise PlanError(f"{where} is more than {MAX_PATH_DEPTH} directories deep")
    if parts[0] == JOURNAL_DIR:
        raise PlanError(f"{where} {_short(value)} is inside the journal")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
