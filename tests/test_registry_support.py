"""Helpers for the manifest, registry, render and doctor tests (no tests here).

A "system" is a temporary root holding a site dir, the manifests and the registry, as a
package manager would leave it; packages are staged in their own DESTDIR, described there by
``ns-strip manifest`` exactly as a build would, and "installed" by copying their files in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from nstree import run_cli, run_module

SITE = "/usr/lib/python3/dist-packages"
MANIFEST_DIR = "/usr/share/ns-strip/manifests"
SRC = Path(__file__).resolve().parents[1] / "src"


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)

    def codes(self) -> list[str]:
        return [f["code"] for f in self.json["findings"]]


def ns_strip(*argv: str) -> Result:
    """Run the command line in this process."""
    return Result(*run_cli(*argv))


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # real imports leave real bytecode
    env.update(extra)
    return env


def ns_strip_process(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the command line as its own process (for kill -9)."""
    return run_module(*argv, env=env)


def write_wrapper(directory: Path) -> Path:
    """An ``ns-strip`` executable on a PATH that runs this checkout, as maintainer scripts call it."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "ns-strip"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={SRC} exec {sys.executable} -m ns_strip "$@"\n')
    wrapper.chmod(0o755)
    return directory


def require_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is needed by this test and CI must provide it")
        pytest.skip(f"{name} not installed")
    return found


@dataclasses.dataclass
class Package:
    name: str
    files: list[str]  # paths relative to the site dir
    stage: Path

    @property
    def manifest(self) -> str:
        return f"{MANIFEST_DIR}/{self.name}.json"


class System:
    """A root with a site dir, as packages installed by a package manager leave it."""

    def __init__(self, root: Path, site: str = SITE) -> None:
        self.root = root
        self.site_dir = site
        self.site = root / site.lstrip("/")
        self.site.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, files: Mapping[str, str], workdir: Path, extra: Sequence[str] = ()) -> Package:
        """Build time: the package's own DESTDIR, and its manifest written by ns-strip."""
        stage = workdir / f"stage-{name}"
        for relative, text in files.items():
            path = stage / self.site_dir.lstrip("/") / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        result = ns_strip("manifest", "--root", str(stage), self.site_dir, "--package", name, *extra)
        assert result.code == 0, result.err
        return Package(name, list(files), stage)

    def stage_wheel(self, name: str, wheel: Path, workdir: Path) -> tuple[Package, Result]:
        """Build time for a wheel: install it into a DESTDIR, strip, write the manifest."""
        stage = workdir / f"stage-{name}"
        subprocess.run([sys.executable, "-m", "installer", "--destdir", str(stage), "--prefix", "/usr", str(wheel)],
                       check=True, capture_output=True)
        assert (stage / self.site_dir.lstrip("/")).is_dir(), "the wheel went to another site dir"
        result = ns_strip("strip", "--root", str(stage), self.site_dir, "--manifest-package", name)
        assert result.code == 0, result.out + result.err
        site = stage / self.site_dir.lstrip("/")
        files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if not p.is_dir())
        return Package(name, files, stage), result

    def install(self, package: Package, placeholders: str = "none", register: bool = True) -> Result:
        """Copy the files in (as the package manager unpacks), then register (as postinst does)."""
        shutil.copytree(package.stage, self.root, dirs_exist_ok=True)
        if not register:
            return Result(0, "", "")
        return self.registry("add", package.name, package.manifest, "--placeholders", placeholders)

    def uninstall(self, package: Package, register: bool = True, clean_bytecode: bool = True) -> Result:
        """Delete the files and the directories they leave empty (as dpkg does), then unregister.

        ``clean_bytecode``: first delete the bytecode of the package's modules, as Debian's
        py3clean (prerm) and RPM (which lists it) do.
        """
        for relative in package.files:
            path = self.site / relative
            if clean_bytecode:
                for pyc in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
                    pyc.unlink()
                if (path.parent / "__pycache__").is_dir() and not any((path.parent / "__pycache__").iterdir()):
                    (path.parent / "__pycache__").rmdir()
            path.unlink(missing_ok=True)
            parent = path.parent
            while parent != self.site and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        (self.root / package.manifest.lstrip("/")).unlink(missing_ok=True)
        if not register:
            return Result(0, "", "")
        return self.registry("remove", package.name)

    def registry(self, *argv: str) -> Result:
        return ns_strip("registry", argv[0], "--root", str(self.root), *argv[1:])

    def registry_json(self, *argv: str) -> Result:
        return self.registry(*argv, "--json")

    def counts(self) -> dict[str, list[str]]:
        listing = self.registry_json("list")
        assert listing.code == 0, listing.err
        return {row["directory"]: row["packages"] for row in listing.json["namespaces"]}

    def tree(self) -> list[str]:
        """Everything below the site dir, directories with a trailing slash."""
        found = []
        for directory, subdirs, files in os.walk(self.site):
            rel = Path(directory).relative_to(self.site).as_posix()
            prefix = "" if rel == "." else rel + "/"
            found += [prefix + d + "/" for d in subdirs] + [prefix + f for f in files]
        return sorted(found)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        """Import for real from the site dir, in a fresh interpreter that writes bytecode."""
        return subprocess.run(
            [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(self.site)!r}); {code}"],
            capture_output=True, text=True, env=subprocess_env(), check=False,
        )


def portion(namespace: str, module: str) -> dict[str, str]:
    """Files of a package that puts module ``namespace.module`` (a subpackage) in a namespace."""
    directory = namespace.replace(".", "/")
    return {f"{directory}/{module}/__init__.py": f"NAME = {module!r}\n"}


def installed_site_dir() -> str:
    """The site dir that ``installer --prefix /usr`` fills with this interpreter's scheme."""
    return sysconfig.get_path("purelib", vars={"base": "/usr", "platbase": "/usr"})

