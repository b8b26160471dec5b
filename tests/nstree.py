"""Test helpers: staged site dirs with true RECORDs, real wheels from real backends, snapshots.

Imported by the tests as a plain module (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from ns_strip.cli import main

PKGUTIL_INIT = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
PKG_RESOURCES_INIT = "__import__('pkg_resources').declare_namespace(__name__)\n"
FALLBACK_INIT = textwrap.dedent(
    """\
    try:
        __import__('pkg_resources').declare_namespace(__name__)
    except ImportError:
        from pkgutil import extend_path
        __path__ = extend_path(__path__, __name__)
    """
)


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def add_distribution(site: Path, name: str, files: dict[str, bytes | str], version: str = "1.0",
                     metadata_files: dict[str, bytes | str] | None = None) -> Path:
    """Install ``files`` into ``site`` as distribution ``name`` with METADATA and a true RECORD."""
    dist_info = f"{name.replace('-', '_').replace('.', '_')}-{version}.dist-info"
    everything: dict[str, bytes] = {}
    for rel, content in files.items():
        everything[rel] = content.encode() if isinstance(content, str) else content
    everything[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    for rel, content in (metadata_files or {}).items():
        everything[f"{dist_info}/{rel}"] = content.encode() if isinstance(content, str) else content
    rows = []
    for rel, data in everything.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append(f"{rel},{record_hash(data)},{len(data)}\n")
    rows.append(f"{dist_info}/RECORD,,\n")
    (site / dist_info / "RECORD").write_text("".join(rows))
    return site / dist_info


def add_egg_info_zope_foo(site: Path, init: str) -> Path:
    """A legacy egg-info install of zope.foo: ``installed-files.txt`` names files relative to it."""
    (site / "zope").mkdir(parents=True)
    (site / "zope" / "__init__.py").write_text(init)
    (site / "zope" / "foo.py").write_text("")
    egg = site / "zope.foo-1.0-py3.11.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: zope.foo\nVersion: 1.0\n")
    (egg / "namespace_packages.txt").write_text("zope\n")
    (egg / "installed-files.txt").write_text("../zope/__init__.py\n../zope/foo.py\nPKG-INFO\nnamespace_packages.txt\n")
    return egg


def snapshot(root: Path) -> dict[str, object]:
    """Every file (bytes), link (target) and directory below ``root``, for exact comparisons."""
    result: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                result[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                result[rel] = "<dir>"
            else:
                result[rel] = path.read_bytes()
    return result


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m ns_strip`` in a child process (for exit codes, signals, no traceback)."""
    return subprocess.run(
        [sys.executable, "-m", "ns_strip", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120,
    )


def write_project(project: Path, files: dict[str, str], setup_py: str) -> Path:
    for rel, content in files.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (project / "setup.py").write_text(textwrap.dedent(setup_py))
    return project


# The interpreter that builds the test wheels. The oldest-set run (.ci/run: ns-strip on Debian's
# own libraries) points it at the main test venv, whose build backends are current: the wheels
# are fixtures, the code under test still runs on the oldest libraries.
BUILD_PYTHON = os.environ.get("NS_STRIP_TEST_BUILD_PYTHON") or sys.executable


def build_setuptools_wheel(project: Path, out_dir: Path) -> Path:
    """Build a wheel with the real setuptools backend, offline, as a distro build would."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [BUILD_PYTHON, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
         "-q", "-w", str(out_dir), str(project)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    wheels = sorted(out_dir.glob("*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1]


def install_wheel(wheel: Path, site: Path) -> None:
    """Install with pypa/installer into ``site`` (purelib and platlib both there)."""
    scheme = {key: str(site) for key in ("purelib", "platlib")}
    scheme.update({key: str(site.parent / key) for key in ("headers", "scripts", "data")})
    destination = SchemeDictionaryDestination(scheme, interpreter=sys.executable, script_kind="posix",
                                              bytecode_optimization_levels=(0,))
    with WheelFile.open(wheel) as source:
        install(source, destination, {"INSTALLER": b"ns-strip-tests\n"})


def python_imports(paths: list[Path], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter whose sys.path holds ``paths`` as site dirs (.pth run)."""
    boot = "import site, sys\n" + "".join(f"site.addsitedir({str(p)!r})\n" for p in paths) + code
    return subprocess.run([sys.executable, "-S", "-c", boot], capture_output=True, text=True, timeout=60)
