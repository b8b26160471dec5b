"""Test helpers for issue 12 (real systems): a real Debian interpreter with a base installation
of its own, legacy distributions built with setuptools the way Debian installs them, venvs.

``fake_base`` copies Debian's ``/usr/bin/python3.11`` into ``<dir>/bin`` beside a link to its
standard library: the interpreter then takes ``<dir>`` as its prefix, so Debian's own site.py
gives it ``<dir>/lib/python3/dist-packages`` as a system site dir whose ``.pth`` files run at
start-up, like ``/usr/lib/python3/dist-packages``, without touching the machine's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

DEBIAN_PYTHON = Path("/usr/bin/python3")
PKG_RESOURCES = Path("/usr/lib/python3/dist-packages/pkg_resources")
PKG_RESOURCES_INIT = "__import__('pkg_resources').declare_namespace(__name__)\n"
PKGUTIL_INIT = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def debian_python_version() -> str:
    out = subprocess.run([str(DEBIAN_PYTHON), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def fake_base(directory: Path, with_pkg_resources: bool = False, versioned_site: bool = False) -> tuple[Path, Path]:
    """A base installation at ``directory``: (its interpreter, its system site dir).

    ``versioned_site``: ``lib/pythonX.Y`` is a directory of links to the standard library
    with a ``dist-packages`` of its own, the third site dir Debian's site.py knows.
    """
    version = debian_python_version()
    real = Path(os.path.realpath(DEBIAN_PYTHON))
    (directory / "bin").mkdir(parents=True)
    (directory / "lib").mkdir()
    python = directory / "bin" / f"python{version}"
    shutil.copy2(real, python)
    stdlib = Path(f"/usr/lib/python{version}")
    if versioned_site:
        own = directory / "lib" / f"python{version}"
        own.mkdir()
        for entry in stdlib.iterdir():
            if entry.name != "dist-packages":
                (own / entry.name).symlink_to(entry)
        (own / "dist-packages").mkdir()
    else:
        (directory / "lib" / f"python{version}").symlink_to(stdlib)
    site = directory / "lib" / "python3" / "dist-packages"
    site.mkdir(parents=True)
    if with_pkg_resources:
        (site / "pkg_resources").symlink_to(PKG_RESOURCES)
    return python, site


def make_venv(python: Path, directory: Path, system_site: bool = True) -> tuple[Path, Path]:
    """A venv of ``python``: (its interpreter, its site-packages)."""
    args = [str(python), "-m", "venv", "--without-pip"]
    if system_site:
        args.append("--system-site-packages")
    subprocess.run([*args, str(directory)], check=True, capture_output=True)
    version = debian_python_version()
    return directory / "bin" / "python", directory / "lib" / f"python{version}" / "site-packages"


def build_legacy(work: Path, name: str, namespace: str, module: str, init: str = PKG_RESOURCES_INIT,
                 namespace_packages: bool = True) -> Path:
    """The source tree of a setuptools project shipping ``namespace.module`` with ``init`` as the
    namespace's ``__init__.py`` (``namespace_packages=[namespace]`` when asked)."""
    source = work / f"src-{name}"
    package = source.joinpath(*namespace.split("."))
    (package / module).mkdir(parents=True)
    parts = namespace.split(".")
    for depth in range(1, len(parts) + 1):
        source.joinpath(*parts[:depth], "__init__.py").write_text(init)
    (package / module / "__init__.py").write_text(f"WHO = {name!r}\n")
    packages = [".".join(parts[:d]) for d in range(1, len(parts) + 1)] + [f"{namespace}.{module}"]
    declared = [".".join(parts[:d]) for d in range(1, len(parts) + 1)] if namespace_packages else []
    (source / "setup.py").write_text(textwrap.dedent(f"""\
        from setuptools import setup
        setup(name={name!r}, version="1.0", packages={packages!r}, namespace_packages={declared!r})
        """))
    return source


def install_debian_style(source: Path, site: Path) -> None:
    """Install as dh_python3 does: ``setup.py install --single-version-externally-managed``, which
    writes a ``*-nspkg.pth`` and an egg-info for a setuptools namespace."""
    subprocess.run(
        [str(DEBIAN_PYTHON), "setup.py", "-q", "install", "--single-version-externally-managed",
         "--record", str(source / "installed.txt"), "--root", "/", "--install-lib", str(site)],
        cwd=source, check=True, capture_output=True,
    )


def install_as_wheel(source: Path, site: Path) -> None:
    """Install as pip does from a wheel: the namespace __init__.py files are kept, no .pth."""
    dist = source / "dist"
    subprocess.run([str(DEBIAN_PYTHON), "setup.py", "-q", "bdist_wheel", "-d", str(dist)], cwd=source, check=True,
                   capture_output=True)
    wheel = next(dist.glob("*.whl"))
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    scheme = {key: str(site) for key in ("purelib", "platlib")}
    scheme.update({"headers": str(site.parent / "include"), "scripts": str(site.parent / "bin"),
                   "data": str(site.parent / "data")})
    destination = SchemeDictionaryDestination(scheme, interpreter=sys.executable, script_kind="posix")
    with WheelFile.open(wheel) as source_wheel:
        install(source_wheel, destination, {"INSTALLER": b"test"})


def imports(python: Path, statement: str, isolated: bool = True) -> tuple[bool, str]:
    """Run ``statement`` with ``python`` (``-I``: no change to sys.path after start-up)."""
    args = [str(python), *(["-I"] if isolated else []), "-c", statement]
    done = subprocess.run(args, capture_output=True, text=True, cwd="/", timeout=120)
    return done.returncode == 0, (done.stdout + done.stderr).strip()
