"""A test bed for real Portage: a scratch repository, profile and ROOT (no tests here).

Portage comes from PyPI (pinned in ``.ci/setup.d/50-gentoo.sh``) into the venv running the
tests, which makes the venv its ``EPREFIX``/``BROOT``. The repository's ``eclass/`` links to
Gentoo's real eclasses, read from ``$NS_STRIP_GENTOO_ECLASSES`` or from a
``shared/gentoo/eclass`` directory beside one of the checkout's parents (never copied into the
project), and to this checkout's ``ns-strip.eclass``. Distfiles are real PyPI sdists, fetched
with ``pip download --no-deps --no-binary :all:`` (pinned, hash-checked) into a cache that
``$NS_STRIP_DISTFILES`` names, and placed in ``DISTDIR`` by hand: Portage's own fetching is
switched off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
SNIPPETS = CHECKOUT / "eclass-snippets"
EXAMPLES = SNIPPETS / "examples"
REPO_NAME = "ns-strip-test"
PYTHON_IMPL = f"python{sys.version_info.major}.{sys.version_info.minor}"
PYTHON_TARGET = PYTHON_IMPL.replace(".", "_")
SITE = f"/usr/lib/{PYTHON_IMPL}/site-packages"

# Portage's features that need libsandbox, user namespaces or a portage user: none here.
FEATURES = (
    "-sandbox -usersandbox -userpriv -userfetch -usersync -network-sandbox -ipc-sandbox -pid-sandbox "
    "-mount-sandbox -news -merge-sync -merge-wait -preserve-libs -binpkg-logs"
)

# The sdists the ebuilds build: (file name, sha256), from PyPI.
DISTFILES = {
    "jaraco.functools==3.0.0": ("jaraco.functools-3.0.0.tar.gz",
                                "5cb0eea0f254584241c519641328a4d4ec2001a86c3cd6d17a8fd228493f6d97"),
    "zope.event==5.0": ("zope.event-5.0.tar.gz",
                        "bac440d8d9891b4068e2b5a2c5e2c9765a9df762944bda6955f96bb9b91e67cd"),
    "fs==2.4.16": ("fs-2.4.16.tar.gz",
                   "ae97c7d51213f4b70b6a958292530289090de3a7e15841e108fbe144f069d313"),
    "jaraco.classes==3.1.0": ("jaraco.classes-3.1.0.tar.gz",
                              "c38698ff8ef932eb33d91c0e8fc192ad7c44ecee03f7f585afd4f35aeaef7aab"),
}


def missing(reason: str) -> None:
    """Skip outside CI, fail in CI (the project's rule for tests whose real tool is missing)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must provide it (.ci/setup.d/50-gentoo.sh)")
    pytest.skip(reason)


def find_eclass_dir() -> Path | None:
    """Gentoo's eclasses: ``$NS_STRIP_GENTOO_ECLASSES``, else ``shared/gentoo/eclass`` beside a parent."""
    named = os.environ.get("NS_STRIP_GENTOO_ECLASSES")
    if named:
        return Path(named) if (Path(named) / "distutils-r1.eclass").is_file() else None
    for parent in CHECKOUT.parents:
        candidate = parent / "shared" / "gentoo" / "eclass"
        if (candidate / "distutils-r1.eclass").is_file():
            return candidate
    return None


def fetch_distfile(requirement: str, cache: Path) -> Path:
    """One pinned sdist from PyPI, checked against its hash."""
    name, sha256 = DISTFILES[requirement]
    path = cache / name
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        path.unlink()  # a download cut short: fetch it again
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "--no-build-isolation", "-d", str(cache), requirement],
            capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0 or not path.is_file():
            missing(f"cannot download {requirement} from PyPI: {result.stderr.strip()[-300:]}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == sha256, f"{path}: sha256 {digest}, expected {sha256}"
    return path


# What the merged packages need at run time, for the import checks: installed apart (pip
# --target), so the venv's own setuptools stays as it is (pkg_resources left setuptools 81).
RUNTIME_PYLIB = ("appdirs==1.4.4", "six==1.17.0", "more-itertools==10.7.0", "setuptools==80.9.0")


def runtime_pylib(cache: Path) -> Path:
    target = cache / ("pylib-" + hashlib.sha256(" ".join(RUNTIME_PYLIB).encode()).hexdigest()[:12])
    if not (target / ".complete").is_file():
        shutil.rmtree(target, ignore_errors=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(target),
             *RUNTIME_PYLIB],
            capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            missing(f"cannot install {' '.join(RUNTIME_PYLIB)} from PyPI: {result.stderr.strip()[-300:]}")
        (target / ".complete").write_text("")
    return target


def build_own_sdist(outdir: Path) -> Path:
    """This checkout's sdist, built by flit_core as a release would be."""
    outdir.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, flit_core.buildapi as b; "
        f"sys.stdout.write(b.build_sdist({str(outdir)!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=CHECKOUT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return outdir / result.stdout.strip()


def sdist_version(sdist: Path) -> str:
    return sdist.name.removesuffix(".tar.gz").rsplit("-", 1)[1]


@dataclasses.dataclass
class Merged:
    """A package merged into a scratch ROOT by ``ebuild … install qmerge``."""

    atom: str
    ebuild: Path
    log: str


class PortageBed:
    """One scratch Portage configuration and repository, shared by all tests of a session."""

    def __init__(self, base: Path, eclass_dir: Path) -> None:
        self.base = base
        self.eclass_dir = eclass_dir
        self.repo = base / "repo"
        self.config_root = base / "config"
        self.distdir = base / "distfiles"
        self.tmpdir = base / "tmp"
        self.bin = base / "bin"
        self.broot = Path(sys.prefix)
        self.logs: dict[str, str] = {}
        self.pylib = Path()  # set by the fixture: what the merged packages import at run time
        for directory in (self.distdir, self.tmpdir, self.bin):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_repo()
        self._write_config()
        self._write_tools()

    # -- set-up -----------------------------------------------------------------------------

    def _write_repo(self) -> None:
        files = {
            "profiles/repo_name": f"{REPO_NAME}\n",
            "profiles/arch.list": "amd64\n",
            "profiles/categories": "dev-python\n",
            "profiles/profiles.desc": "amd64 default stable\n",
            "profiles/eapi": "8\n",
            "profiles/default/eapi": "8\n",
            "profiles/default/make.defaults": "\n".join([
                'ARCH="amd64"',
                'ACCEPT_KEYWORDS="amd64 ~amd64"',
                'CHOST="x86_64-pc-linux-gnu"',
                'CFLAGS="-O2 -pipe"',
                'CXXFLAGS="${CFLAGS}"',
                'ELIBC="glibc"',
                'KERNEL="linux"',
                'USERLAND="GNU"',
                'USE_EXPAND="PYTHON_TARGETS PYTHON_SINGLE_TARGET"',
                'USE_EXPAND_UNPREFIXED="ARCH"',
                'USE_EXPAND_IMPLICIT="ARCH ELIBC KERNEL USERLAND"',
                'USE_EXPAND_VALUES_ARCH="amd64"',
                'USE_EXPAND_VALUES_ELIBC="glibc"',
                'USE_EXPAND_VALUES_KERNEL="linux"',
                'USE_EXPAND_VALUES_USERLAND="GNU"',
                'IUSE_IMPLICIT="prefix prefix-guest prefix-stack"',
                f'PYTHON_TARGETS="{PYTHON_TARGET}"',
                f'PYTHON_SINGLE_TARGET="{PYTHON_TARGET}"',
                "",
            ]),
            "metadata/layout.conf": "masters =\nthin-manifests = true\nsign-manifests = false\n"
                                    "cache-formats =\n",
        }
        for relative, text in files.items():
            path = self.repo / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        eclasses = self.repo / "eclass"
        eclasses.mkdir()
        # Links, not copies: Gentoo's eclasses stay where they are.
        for eclass in sorted(self.eclass_dir.glob("*.eclass")):
            (eclasses / eclass.name).symlink_to(eclass)
        # A copy of the project's own eclass: pkgcheck scans only files inside the repository.
        shutil.copyfile(SNIPPETS / "ns-strip.eclass", eclasses / "ns-strip.eclass")

    def _write_config(self) -> None:
        etc = self.config_root / "etc" / "portage"
        etc.mkdir(parents=True)
        (etc / "make.profile").symlink_to(self.repo / "profiles" / "default")
        self.repos_conf = f"[DEFAULT]\nmain-repo = {REPO_NAME}\n\n[{REPO_NAME}]\nlocation = {self.repo}\n"
        (etc / "repos.conf").write_text(self.repos_conf)
        (etc / "make.conf").write_text("\n".join([
            f'FEATURES="{FEATURES}"',
            'FETCHCOMMAND="false"',
            'RESUMECOMMAND="false"',
            'ACCEPT_LICENSE="*"',
            f'DISTDIR="{self.distdir}"',
            f'PORTAGE_TMPDIR="{self.tmpdir}"',
            f'PKGDIR="{self.base / "packages"}"',
            'PORTAGE_USERNAME="root"',
            'PORTAGE_GRPNAME="root"',
            'CLEAN_DELAY="0"',
            'EMERGE_WARNING_DELAY="0"',
            "",
        ]))

    def _write_tools(self) -> None:
        # Portage unpacks with gtar.
        tar = shutil.which("tar")
        if tar is None:
            missing("tar is needed to unpack distfiles")
        gtar = self.bin / "gtar"
        if not gtar.exists():
            gtar.symlink_to(tar)
        # The eclasses run ${BROOT}/usr/bin/python3.X; a wrapper keeps the venv (a link would lose it).
        wrapper = self.broot / "usr" / "bin" / PYTHON_IMPL
        text = f'#!/bin/sh\nexec {self.broot / "bin" / PYTHON_IMPL} "$@"\n'
        if not wrapper.is_file() or wrapper.read_text() != text:
            wrapper.parent.mkdir(parents=True, exist_ok=True)
            wrapper.write_text(text)
            wrapper.chmod(0o755)

    # -- running Portage ---------------------------------------------------------------------

    def env(self, root: Path, eprefix: str = "") -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PORTAGE"))}
        path = [str(self.broot / "usr" / "bin"), str(self.bin), str(self.broot / "bin"), env.get("PATH", "")]
        env.update({
            "PATH": os.pathsep.join(path),
            "PORTAGE_CONFIGROOT": str(self.config_root),
            # Instead of every repos.conf, so the gentoo repo of Portage's defaults is not looked for.
            "PORTAGE_REPOSITORIES": self.repos_conf,
            "ROOT": str(root),
            "FEATURES": FEATURES,
            "PORTAGE_USERNAME": "root",
            "PORTAGE_GRPNAME": "root",
            "PORTAGE_TMPDIR": str(self.tmpdir),
            "DISTDIR": str(self.distdir),
            "NOCOLOR": "true",
        })
        # Portage from PyPI takes its venv as the default EPREFIX: name the one wanted.
        env["EPREFIX"] = eprefix
        return env

    def add_ebuild(self, source: Path | str, atom: str) -> Path:
        """Place an ebuild (a file, or its text) as ``CATEGORY/PN/PF.ebuild``."""
        category, pf = atom.split("/")
        parsed = re.fullmatch(r"(.+?)-([0-9][^-]*)(-r[0-9]+)?", pf)
        assert parsed, f"not CATEGORY/PF: {atom}"
        pn = parsed.group(1)
        directory = self.repo / category / pn
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{pf}.ebuild"
        text = source.read_text() if isinstance(source, Path) else source
        path.write_text(text)
        return path

    def add_distfile(self, path: Path) -> None:
        target = self.distdir / path.name
        if not target.exists():
            shutil.copyfile(path, target)

    def ebuild(self, ebuild: Path, *commands: str, root: Path, eprefix: str = "",
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run Portage's ``ebuild`` command; its whole output is kept for failure messages."""
        # Portage merges only into an EROOT that exists.
        (root / eprefix.lstrip("/")).mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(self.broot / "bin" / "ebuild"), str(ebuild), *commands],
            capture_output=True, text=True, env=self.env(root, eprefix), timeout=900, stdin=subprocess.DEVNULL,
        )
        output = result.stdout + result.stderr
        self.logs[f"{ebuild.name} {' '.join(commands)}"] = output
        if check:
            assert result.returncode == 0, f"ebuild {ebuild.name} {' '.join(commands)} failed:\n{output[-8000:]}"
        return result

    def merge(self, ebuild: Path, root: Path, eprefix: str = "") -> Merged:
        """Build, install and qmerge into ``root`` (after a manifest for the distfiles)."""
        self.ebuild(ebuild, "manifest", root=root, eprefix=eprefix)
        result = self.ebuild(ebuild, "clean", "install", "qmerge", "clean", root=root, eprefix=eprefix)
        atom = f"{ebuild.parent.parent.name}/{ebuild.stem}"
        return Merged(atom, ebuild, result.stdout + result.stderr)

    def unmerge(self, ebuild: Path, root: Path, eprefix: str = "") -> str:
        result = self.ebuild(ebuild, "unmerge", root=root, eprefix=eprefix)
        return result.stdout + result.stderr

    def image(self, ebuild: Path, root: Path, eprefix: str = "") -> str:
        """``ebuild … clean install`` only; returns the output (the image stays in the work dir)."""
        self.ebuild(ebuild, "manifest", root=root, eprefix=eprefix)
        result = self.ebuild(ebuild, "clean", "install", root=root, eprefix=eprefix)
        return result.stdout + result.stderr

    def image_dir(self, atom: str) -> Path:
        return self.tmpdir / "portage" / atom / "image"

    def installed(self, root: Path, eprefix: str = "") -> list[str]:
        vdb = root / eprefix.lstrip("/") / "var" / "db" / "pkg"
        if not vdb.is_dir():
            return []
        return sorted(f"{c.name}/{p.name}" for c in vdb.iterdir() if c.is_dir() for p in c.iterdir())


def import_in(site: Path, statements: str, *extra_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``statements`` with the merged site dir first on the path and no other site dir of the
    venv but the ones named (``-S``: no .pth files, so nothing of the venv's own ns_strip)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *map(str, extra_path)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, "-S", "-c", statements], capture_output=True, text=True, env=env,
                          timeout=120)


def sdist_member(sdist: Path, member: str) -> str:
    with tarfile.open(sdist) as archive:
        extracted = archive.extractfile(member)
        assert extracted is not None
        return extracted.read().decode()
