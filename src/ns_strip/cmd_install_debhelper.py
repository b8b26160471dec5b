"""``ns-strip install-debhelper``: put dh_ns_strip, its dh add-on and its man page in place.

The files are this package's data (:mod:`ns_strip.debhelper`), so a ``pip install`` is
enough to get them; this command installs them in Debian's layout below ``--destdir``, the
way a Debian package of ns-strip would ship them. Everything is prepared before the first
file is written, and a failure restores what was there before.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import __version__
from .debhelper import HELPER, HELPER_FILES, MAN_PAGE, read_helper_file
from .errors import ApplyError, UsageError
from .report import Report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--destdir", default="/", metavar="DIR",
                        help="install below DIR, e.g. a package's staging tree (default /)")
    parser.add_argument("--python", default=sys.executable, metavar="EXE",
                        help="the interpreter dh_ns_strip runs with; it must be able to import ns_strip "
                             "(default: the one running this command)")
    parser.add_argument("--no-man", action="store_true", help="do not render and install the man page (pod2man)")


def run(args: argparse.Namespace) -> Report:
    if not os.path.isabs(args.python):
        raise UsageError("--python must be an absolute path (it becomes the #! line)", args.python)
    destdir = Path(args.destdir)
    if not destdir.is_dir():
        raise UsageError("--destdir is not a directory", args.destdir)

    contents: list[tuple[str, bytes, int]] = []
    for item in HELPER_FILES:
        data = read_helper_file(item.name)
        if item.name == HELPER:
            data = with_interpreter(data, args.python)
        contents.append((item.target, data, item.mode))
    if not args.no_man:
        contents.append((MAN_PAGE, render_man_page(read_helper_file(HELPER)), 0o644))

    report = Report(data={"installed": [], "python": args.python, "destdir": str(destdir)})
    written: list[tuple[Path, bytes | None, int | None]] = []  # target, what it held, its mode
    try:
        for target, data, mode in contents:
            path = destdir / target
            written.append(_install(path, data, mode))
            report.action(f"Installing {path}")
            report.data["installed"].append(str(path))
    except OSError as exc:
        _restore(written)
        raise ApplyError(f"cannot install: {exc.strerror or exc}; the files installed before it were "
                         "restored", exc.filename or str(destdir)) from exc
    return report


def with_interpreter(script: bytes, python: str) -> bytes:
    """The script with its ``#!`` line naming ``python``."""
    _, _, rest = script.partition(b"\n")
    return f"#!{python}\n".encode() + rest


def render_man_page(script: bytes) -> bytes:
    """dh_ns_strip(1) from the POD in the script, as debhelper renders its own pages."""
    pod2man = shutil.which("pod2man")
    if pod2man is None:
        raise UsageError("pod2man (Debian package perl) is needed to render the man page; or use --no-man")
    done = subprocess.run(
        [pod2man, "--utf8", "--errors=die", "--center=Debhelper", f"--release=ns-strip {__version__}",
         f"--name={HELPER.upper()}", "--section=1", "-"],
        input=script, capture_output=True, check=False,
    )
    if done.returncode != 0:
        problem = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise ApplyError(f"pod2man failed: {problem}; nothing was installed", HELPER)
    return done.stdout


def _install(path: Path, data: bytes, mode: int) -> tuple[Path, bytes | None, int | None]:
    """Write one file atomically; return what is needed to put the old one back."""
    previous = path.read_bytes() if path.is_file() else None
    previous_mode = path.stat().st_mode & 0o7777 if previous is not None else None
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.ns-strip-new")
    try:
        staged.write_bytes(data)
        os.chmod(staged, mode)
        os.replace(staged, path)
    except OSError:
        staged.unlink(missing_ok=True)
        raise
    return path, previous, previous_mode


def _restore(written: list[tuple[Path, bytes | None, int | None]]) -> None:
    for path, previous, mode in reversed(written):
        try:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(previous)
                if mode is not None:
                    os.chmod(path, mode)
        except OSError:
            pass  # the error being reported already names the problem
