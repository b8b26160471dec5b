"""The target interpreter and its whole ``sys.path``, found without running any code of a tree.

A site dir is stripped for one interpreter, and what imports there depends on every other entry
of that interpreter's ``sys.path``. The interpreter is trusted (it is the system's, or the
venv's); the trees on its path are not. So it is run with ``-I -S``: no ``site`` processing,
no ``.pth`` file executed, no environment variables, no current directory, stdin closed, a
bounded time, from ``/``. It reports its standard-library path, version and site-packages
prefixes (emulating ``site.venv`` from ``pyvenv.cfg``), and ns-strip itself then adds each
site dir and the path lines of its ``.pth`` files in the order ``site.addsitedir`` would, reading
them through :mod:`safeio`. Import lines of ``.pth`` files are never executed; they are what
:mod:`pthaudit` reports. The user site dir is left out (``-I``): ns-strip runs as root for a
system, not for one user's ``~/.local``.

Default interpreter (``--python`` not given), from the site dir's path in the target system:
``<prefix>/lib/pythonX.Y/site-packages`` of a venv (``<prefix>/pyvenv.cfg``; outside ``--root``
only) is that venv's ``bin/python``; ``<prefix>/lib/pythonX.Y/…`` or ``<prefix>/lib/python3/…``
is ``<prefix>/bin/pythonX.Y`` or ``<prefix>/bin/python3`` when that exists (a staged
``/usr/lib/python3/dist-packages`` is for the build machine's ``/usr/bin/python3``); otherwise
the interpreter running ns-strip.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .errors import BadInputError
from .safeio import MAX_TEXT_BYTES, read_regular
from .slotted import FrozenSlotted, set_field

WAIT_SECONDS = 60
_MAX_OUTPUT = 1 << 20

# Run with -I -S: prints what the interpreter knows of its own layout. site.getsitepackages is
# given the prefixes site.venv would set up, without calling site.venv (which runs .pth files).
_QUERY = r"""
import json, os, site, sys
exe_dir = os.path.dirname(os.path.abspath(sys.executable))
prefix = os.path.dirname(exe_dir)
prefixes = list(site.PREFIXES)
venv = None
for conf in (os.path.join(exe_dir, "pyvenv.cfg"), os.path.join(prefix, "pyvenv.cfg")):
    if os.path.isfile(conf):
        system = False
        with open(conf, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, eq, value = line.partition("=")
                if eq and key.strip().lower() == "include-system-site-packages":
                    system = value.strip().lower() == "true"
        venv = prefix
        sys.prefix = sys.exec_prefix = prefix
        prefixes = [prefix] + (prefixes if system else [])
        break
print(json.dumps({
    "executable": sys.executable,
    "version": list(sys.version_info[:2]),
    "implementation": sys.implementation.name,
    "path": sys.path,
    "site_dirs": site.getsitepackages(prefixes),
    "venv": venv,
}))
"""


class Interpreter(FrozenSlotted):
    __slots__ = ("executable", "version", "implementation", "entries", "site_dirs", "why")

    executable: str
    version: tuple[int, int]
    implementation: str
    entries: tuple[str, ...]  # the whole sys.path, in order, as the import system walks it
    site_dirs: tuple[str, ...]  # the entries whose .pth files site.py processes
    why: str  # how it was chosen, for the user

    def __init__(self, executable: str, version: tuple[int, int], implementation: str, entries: tuple[str, ...],
                 site_dirs: tuple[str, ...], why: str) -> None:
        set_field(self, "executable", executable)
        set_field(self, "version", version)
        set_field(self, "implementation", implementation)
        set_field(self, "entries", entries)
        set_field(self, "site_dirs", site_dirs)
        set_field(self, "why", why)

    @property
    def runs_pth_imports(self) -> bool:
        """PEP 829: ``import`` lines of ``.pth`` files are ignored from Python 3.18 on."""
        return self.version < (3, 18)

    def has_entry(self, path: str) -> bool:
        wanted = os.path.normpath(path)
        return any(os.path.normpath(entry) == wanted for entry in self.entries)


# Compiled by re's cache when first used: only --python and 'doctor' look for the interpreter.
_SITE_PATH = r"^(?P<prefix>.*)/lib(?:64)?/(?P<python>python\d(?:\.\d+)?t?)/(?:site|dist)-packages/?$"


def default_python(site: str, root: str | None) -> tuple[str, str]:
    """The interpreter a site dir (absolute in the target system under ``root``) is for, and why."""
    match = re.match(_SITE_PATH, Path(os.path.abspath(site) if root is None else site).as_posix())
    if match:
        prefix, python = match["prefix"], match["python"]
        if root is None and os.path.isfile(os.path.join(prefix, "pyvenv.cfg")):
            for name in (python, "python3", "python"):
                candidate = os.path.join(prefix, "bin", name)
                if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                    return candidate, f"the venv {prefix} the site dir belongs to"
        candidate = os.path.join(prefix or "/", "bin", python)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate, f"{python} of {prefix or '/'}, as the site dir's path names"
    return sys.executable, "the interpreter running ns-strip"


def query(executable: str, why: str = "given with --python") -> Interpreter:
    """Ask ``executable`` for its layout (without site processing) and build its sys.path."""
    # Imported here: every command that takes --python imports this module, few runs use it.
    import json
    import subprocess

    try:
        done = subprocess.run(
            [executable, "-I", "-S", "-c", _QUERY], stdin=subprocess.DEVNULL, capture_output=True,
            timeout=WAIT_SECONDS, check=False, cwd="/",
        )
    except OSError as exc:
        raise BadInputError(f"cannot run it: {exc.strerror or exc}", executable) from exc
    except subprocess.TimeoutExpired as exc:
        raise BadInputError(f"did not describe its sys.path within {WAIT_SECONDS} s", executable) from exc
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise BadInputError(f"exited with status {done.returncode} when asked for its sys.path: {last[:200]}",
                            executable)
    try:
        if len(done.stdout) > _MAX_OUTPUT:
            raise ValueError("output too large")
        data = json.loads(done.stdout.decode("utf-8"))
        version = tuple(int(v) for v in data["version"])
        stdlib = [str(e) for e in data["path"]]
        site_dirs = [str(e) for e in data["site_dirs"]]
        implementation = str(data["implementation"])
        if len(version) != 2 or not all(isinstance(e, str) for e in data["path"] + data["site_dirs"]):
            raise ValueError("unexpected fields")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"printed something other than its sys.path ({exc})", executable) from exc
    entries = list(stdlib)
    used_sites = []
    for site in site_dirs:
        if not os.path.isdir(site) or site in entries:
            continue
        used_sites.append(site)
        entries.append(site)
        for directory in pth_path_lines(site):
            if directory not in entries:
                entries.append(directory)
    return Interpreter(executable, (version[0], version[1]), implementation, tuple(entries), tuple(used_sites), why)


def pth_files(site: str) -> list[str]:
    """The ``.pth`` files site.py reads in ``site``, in its order (sorted, hidden ones skipped)."""
    try:
        names = os.listdir(site)
    except OSError:
        return []
    return sorted(name for name in names if name.endswith(".pth") and not name.startswith("."))


def pth_path_lines(site: str) -> list[str]:
    """Directories the path lines of the ``.pth`` files in ``site`` add, as site.py adds them."""
    added = []
    for name in pth_files(site):
        try:
            data = read_regular(os.path.join(site, name), MAX_TEXT_BYTES)
        except BadInputError:
            continue  # site.py would fail on it too; pthaudit reports it
        for line in data.decode("utf-8", errors="replace").splitlines():
            if line.startswith("#") or not line.strip() or line.startswith(("import ", "import\t")):
                continue
            directory = os.path.normpath(os.path.join(site, line.rstrip()))
            if os.path.exists(directory) and directory not in added:
                added.append(directory)
    return added


def resolve(python: str | None, site: str | None, root: str | None) -> Interpreter:
    """The interpreter given with ``--python``, or the default for ``site``."""
    if python:
        return query(python)
    executable, why = default_python(site, root) if site else (sys.executable, "the interpreter running ns-strip")
    return query(executable, why)


def add_python_argument(parser) -> None:  # noqa: ANN001 - argparse.ArgumentParser
    """``--python EXE``, shared by the commands that look at a target interpreter's sys.path."""
    parser.add_argument(
        "--python", metavar="EXE", default=None,
        help="the interpreter the tree is for, whose whole sys.path is checked (default: a venv's own "
             "python, else <prefix>/bin/pythonX.Y or python3 as the site dir's path names, else the "
             "interpreter running ns-strip)",
    )
