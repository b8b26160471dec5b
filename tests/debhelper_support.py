"""Test helpers for dh_ns_strip: the real debhelper, dpkg and Debian's Python, found or required.

Imported by the tests as a plain module (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from nstree import run_cli

# The environment a Debian build gets: no pyenv, virtualenv or PYTHON* variable leaks in.
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def missing(message: str) -> None:
    """Skip locally; fail in CI, where .ci/run installs everything these tests need."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tools(*tools: str) -> None:
    absent = [tool for tool in tools if shutil.which(tool, path=DEBIAN_PATH) is None]
    if absent:
        missing(f"needs {', '.join(absent)} (Debian packages debhelper, dh-python, dpkg-dev, perl)")


def install_helpers(destdir: Path, python: str = sys.executable, man: bool = False) -> Path:
    """dh_ns_strip and the add-on, installed below ``destdir`` by ns-strip itself."""
    destdir.mkdir(parents=True, exist_ok=True)
    args = ["install-debhelper", "--destdir", str(destdir), "--python", python]
    code, _, err = run_cli(*args, *([] if man else ["--no-man"]))
    assert code == 0, err
    return destdir


def debian_env(helpers: Path | None, home: Path, **extra: str) -> dict[str, str]:
    """A clean build environment; ``helpers`` (an install-debhelper destdir) comes first."""
    env = {"PATH": DEBIAN_PATH, "LC_ALL": "C.UTF-8", "HOME": str(home)}
    if helpers is not None:
        env["PATH"] = f"{helpers}/usr/bin:{DEBIAN_PATH}"
        env["PERL5LIB"] = f"{helpers}/usr/share/perl5"
    env.update(extra)
    return env


def write_debian_dir(source: Path, packages: Mapping[str, str], build_depends: Sequence[str] = (),
                     dh_arguments: str = "--with python3 --buildsystem=pybuild",
                     rules_extra: str = "") -> Path:
    """debian/ for a source package whose binary packages are ``name -> Architecture``."""
    debian = source / "debian"
    (debian / "source").mkdir(parents=True, exist_ok=True)
    (debian / "source" / "format").write_text("3.0 (native)\n")
    depends = ", ".join(["debhelper-compat (= 13)", "dh-python", "python3-all", "python3-setuptools",
                         *build_depends])
    stanzas = [textwrap.dedent(f"""\
        Source: {source.name}
        Section: python
        Priority: optional
        Maintainer: ns-strip tests <tests@example.org>
        Build-Depends: {depends}
        Standards-Version: 4.6.2
        Rules-Requires-Root: no
        """)]
    for name, architecture in packages.items():
        stanzas.append(textwrap.dedent(f"""\
            Package: {name}
            Architecture: {architecture}
            Depends: ${{python3:Depends}}, ${{misc:Depends}}
            Description: {name} for the ns-strip tests
             A portion of a shared namespace.
            """))
    (debian / "control").write_text("\n".join(stanzas))
    (debian / "changelog").write_text(textwrap.dedent(f"""\
        {source.name} (1.0-1) unstable; urgency=medium

          * Test package.

         -- ns-strip tests <tests@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
        """))
    rules = debian / "rules"
    rules.write_text(f"#!/usr/bin/make -f\n\n%:\n\tdh $@ {dh_arguments}\n{rules_extra}")
    rules.chmod(0o755)
    return debian


def run(command: Sequence[str | Path], cwd: Path, env: Mapping[str, str],
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=dict(env), capture_output=True,
                          text=True, timeout=timeout, check=False)
