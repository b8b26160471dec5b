"""End to end with the real Debian tools: build .debs with dpkg-buildpackage, dh and pybuild,
install them with dpkg into a scratch root, import them with Debian's python3.

The source package has two binary packages sharing the namespace ``nsstripdemo`` the legacy
way. python3-nsstripdemo-alpha ships pkgutil-style ``__init__.py`` files. python3-nsstripdemo-beta
declares ``namespace_packages=["nsstripdemo"]`` to setuptools, which installs a ``*-nspkg.pth``
instead of that ``__init__.py``; its sub-namespace ``nsstripdemo.plugins`` is pkgutil-style like
alpha's. Both therefore ship ``nsstripdemo/plugins/__init__.py``: built as dh_python3 builds it
today the second package fails at ``dpkg -i``; with ``Build-Depends: dh-sequence-ns-strip``
both install and import, and the registry follows them in and out through python3-ns-strip's
dpkg file trigger (its real ``debian/python3-ns-strip.{triggers,postinst,postrm}``, packaged
here around the ``ns-strip`` of this checkout).

Each scenario's source package is built once (module-scoped fixtures). The builds use
Debian's /usr/bin/python3 in a clean environment; dh_ns_strip runs under it too, as it would
from a Debian package of ns-strip, importing ns_strip from this checkout (see
``debian_pythonpath``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from debhelper_support import (
    debian_env,
    install_helpers,
    missing,
    require_tools,
    run,
    write_debian_dir,
)
from nstree import PKG_RESOURCES_INIT, PKGUTIL_INIT, run_cli

import ns_strip
from ns_strip.registry import PLACEHOLDER

DEBIAN_PYTHON = "/usr/bin/python3"
SITE = "usr/lib/python3/dist-packages"
NAMESPACE = "nsstripdemo"
ALPHA, BETA = "python3-nsstripdemo-alpha", "python3-nsstripdemo-beta"
CHECKOUT_SRC = Path(ns_strip.__file__).resolve().parent.parent

# pybuild builds one setup.py per call: one project, one binary package each.
RULES_EXTRA = textwrap.dedent("""
    override_dh_auto_clean override_dh_auto_configure override_dh_auto_build override_dh_auto_install:
    \tPYBUILD_NAME=nsstripdemo-alpha $(patsubst override_%,%,$@) --sourcedirectory=alpha
    \tPYBUILD_NAME=nsstripdemo-beta $(patsubst override_%,%,$@) --sourcedirectory=beta

    override_dh_auto_test:
    """)


@pytest.fixture(scope="module", autouse=True)
def debian_tools() -> None:
    require_tools("dpkg-buildpackage", "dh", "dh_python3", "pybuild", "dpkg", "dpkg-deb", "perl", "python3")
    done = subprocess.run([DEBIAN_PYTHON, "-c", "import setuptools"], capture_output=True, check=False)
    if done.returncode != 0:
        missing(f"{DEBIAN_PYTHON} cannot import setuptools (Debian package python3-setuptools)")
    # dh_python3's own maintainer scripts are not DPKG_ROOT-aware: run chrootless, its
    # py3compile/py3clean look at these paths of this machine. They must not exist.
    assert not Path("/", SITE, NAMESPACE).exists(), f"/{SITE}/{NAMESPACE} exists on this machine"


@pytest.fixture(scope="module")
def debian_pythonpath() -> str:
    """PYTHONPATH that lets Debian's python3 import ns_strip from this checkout, with every
    other runtime dependency from Debian (python3-packaging 23.0, python3-installer 0.6,
    python3-jinja2, python3-pyelftools): what a Debian package of ns-strip runs on."""
    path = str(CHECKOUT_SRC)
    problem = _debian_python_import_error("import installer.records, jinja2, elftools, ns_strip.cli", path)
    if problem:
        missing(f"{DEBIAN_PYTHON} cannot import ns_strip ({problem}); Debian packages python3-installer, "
                "python3-jinja2, python3-pyelftools, python3-packaging are needed")
    return path


def _debian_python_import_error(code: str, pythonpath: str) -> str:
    done = subprocess.run([DEBIAN_PYTHON, "-c", code], env={"PYTHONPATH": pythonpath},
                          capture_output=True, text=True, check=False)
    return "" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_helpers(tmp_path_factory.mktemp("helpers"), python=DEBIAN_PYTHON)


def write_source(root: Path, build_depends: list[str]) -> Path:
    source = root / "nsstripdemo"
    files = {
        "alpha/nsstripdemo/__init__.py": PKGUTIL_INIT,
        "alpha/nsstripdemo/plugins/__init__.py": PKGUTIL_INIT,
        "alpha/nsstripdemo/plugins/alpha/__init__.py": "NAME = 'alpha'\n",
        "alpha/setup.py": """\
            from setuptools import setup
            setup(name="nsstripdemo.alpha", version="1.0",
                  packages=["nsstripdemo", "nsstripdemo.plugins", "nsstripdemo.plugins.alpha"])
            """,
        "beta/nsstripdemo/__init__.py": PKG_RESOURCES_INIT,
        "beta/nsstripdemo/plugins/__init__.py": PKGUTIL_INIT,
        "beta/nsstripdemo/plugins/beta/__init__.py": "NAME = 'beta'\n",
        "beta/setup.py": """\
            from setuptools import setup
            setup(name="nsstripdemo.beta", version="1.0", namespace_packages=["nsstripdemo"],
                  packages=["nsstripdemo", "nsstripdemo.plugins", "nsstripdemo.plugins.beta"])
            """,
    }
    for rel, text in files.items():
        path = source / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    write_debian_dir(source, {ALPHA: "all", BETA: "all"}, build_depends, rules_extra=RULES_EXTRA)
    return source


def build(root: Path, build_depends: list[str], env: dict[str, str]) -> tuple[dict[str, Path], str]:
    """dpkg-buildpackage -us -uc -b; returns the .debs by package name and the build log."""
    source = write_source(root, build_depends)
    # -d: dh-sequence-ns-strip is provided by the helpers installed for the test, not by an
    # installed package, so dpkg-checkbuilddeps would refuse it.
    options = ["-d"] if "dh-sequence-ns-strip" in build_depends else []
    done = run(["dpkg-buildpackage", "-us", "-uc", "-b", *options], source, env, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    debs = {path.name.split("_")[0]: path for path in root.glob("*.deb")}
    assert set(debs) == {ALPHA, BETA}, log[-4000:]
    return debs, log


@pytest.fixture(scope="module")
def legacy_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("legacy")
    return build(root, [], debian_env(None, root))[0]


@pytest.fixture(scope="module")
def stripped_build(tmp_path_factory, helpers, debian_pythonpath) -> tuple[dict[str, Path], str]:
    root = tmp_path_factory.mktemp("stripped")
    env = debian_env(helpers, root, PYTHONPATH=debian_pythonpath, DH_VERBOSE="1")
    return build(root, ["dh-sequence-ns-strip"], env)


def deb_files(deb: Path) -> list[str]:
    done = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    listing = subprocess.run(["tar", "-t"], input=done.stdout, capture_output=True, check=True)
    return [line.removeprefix("./") for line in listing.stdout.decode().splitlines()]


def control_file(deb: Path, name: str, into: Path) -> str:
    subprocess.run(["dpkg-deb", "-e", str(deb), str(into)], check=True, capture_output=True)
    return (into / name).read_text()


class ScratchRoot:
    """A Debian system image that dpkg installs into without chroot: --instdir and --admindir,
    maintainer scripts run here with DPKG_ROOT set to the image."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.admindir = path / "var/lib/dpkg"
        for sub in ("info", "updates", "triggers"):
            (self.admindir / sub).mkdir(parents=True)
        for name in ("status", "available"):
            (self.admindir / name).touch()
        self.env = env

    def dpkg(self, *args: str) -> subprocess.CompletedProcess[str]:
        # --force-depends: the image has no python3 package installed; Debian's python3 of
        # this machine is what imports from it.
        return run(["dpkg", f"--instdir={self.path}", f"--admindir={self.admindir}", "--log=/dev/null",
                    "--force-script-chrootless", "--force-not-root", "--force-depends", *args],
                   self.path, self.env)

    def imports(self, *modules: str) -> subprocess.CompletedProcess[str]:
        """Debian's python3 with the image's site dir added as a site dir (.pth files run)."""
        code = (f"import site; site.addsitedir({str(self.path / SITE)!r})\n"
                + "".join(f"import {m}; print({m}.NAME)\n" for m in modules))
        return run([DEBIAN_PYTHON, "-I", "-B", "-c", code], self.path, {"PATH": "/usr/bin:/bin"})

    def registry_counts(self) -> dict[str, int]:
        code, out, err = run_cli("registry", "list", "--root", str(self.path), "--json")
        assert code == 0, err
        return {row["name"]: row["count"] for row in json.loads(out)["namespaces"]}


@pytest.fixture
def scratch_root(tmp_path, debian_pythonpath) -> Iterator[ScratchRoot]:
    # The maintainer scripts find ns-strip on PATH, as on a system where it is installed.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "ns-strip"
    launcher.write_text(f"#!{DEBIAN_PYTHON}\nfrom ns_strip.cli import run\nrun()\n")
    launcher.chmod(0o755)
    env = debian_env(None, tmp_path, PYTHONPATH=debian_pythonpath)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    image = tmp_path / "image"
    image.mkdir()
    yield ScratchRoot(image, env)


def test_legacy_build_reproduces_the_overwrite_failure(legacy_build, scratch_root):
    alpha, beta = deb_files(legacy_build[ALPHA]), deb_files(legacy_build[BETA])
    shared_init = f"{SITE}/{NAMESPACE}/plugins/__init__.py"
    assert shared_init in alpha and shared_init in beta
    assert f"{SITE}/{NAMESPACE}.beta-1.0-nspkg.pth" in beta  # shipped unchanged today

    first = scratch_root.dpkg("-i", str(legacy_build[ALPHA]))
    assert first.returncode == 0, first.stderr
    second = scratch_root.dpkg("-i", str(legacy_build[BETA]))
    assert second.returncode != 0
    assert (f"trying to overwrite '/{shared_init}', which is also in package {ALPHA}") in second.stderr


def test_addon_runs_dh_ns_strip_between_dh_python3_and_dh_installdeb(stripped_build):
    _, log = stripped_build
    helpers_run = re.findall(r"^   (dh_python3|dh_ns_strip|dh_installdeb)\b", log, re.MULTILINE)
    assert helpers_run == ["dh_python3", "dh_ns_strip", "dh_installdeb"]
    assert f"{ALPHA}: Stripping pkgutil-style namespace {NAMESPACE} ({NAMESPACE}/__init__.py)" in log
    assert f"{BETA}: Stripping pkg_resources-style namespace {NAMESPACE} ({NAMESPACE}.beta-1.0-nspkg.pth)" in log


def test_stripped_debs_ship_no_namespace_files_and_register_on_install(stripped_build, tmp_path):
    debs, _ = stripped_build
    for package, deb in debs.items():
        files = deb_files(deb)
        portion = "alpha" if package == ALPHA else "beta"
        assert f"{SITE}/{NAMESPACE}/plugins/{portion}/__init__.py" in files
        assert not [f for f in files if re.fullmatch(rf"{SITE}/{NAMESPACE}(/plugins)?/__init__\.py", f)]
        assert not [f for f in files if f.endswith(("-nspkg.pth", "namespace_packages.txt"))]
        assert f"usr/share/ns-strip/manifests/{package}.json" in files
        postinst = control_file(deb, "postinst", tmp_path / package)
        assert "py3compile" in postinst  # dh_python3's snippet is there; none of ns-strip's:
        assert "ns-strip" not in postinst  # the registry follows the manifests by a trigger
        assert "ns-strip" not in (tmp_path / package / "prerm").read_text()


@pytest.fixture(scope="module")
def trigger_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """python3-ns-strip's trigger and maintainer scripts, as debian/ has them, in a package
    without the module (the maintainer scripts run the ``ns-strip`` on PATH); the benchmark of
    the trigger makes it the same way."""
    spec = importlib.util.spec_from_file_location("dpkg_trigger", CHECKOUT_SRC.parent / "benchmarks/dpkg_trigger.py")
    assert spec is not None and spec.loader is not None
    dpkg_trigger = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dpkg_trigger)
    return dpkg_trigger.trigger_package(tmp_path_factory.mktemp("trigger"))


def test_both_install_import_and_leave_nothing_behind(stripped_build, scratch_root, trigger_deb):
    debs, _ = stripped_build
    namespace_dir = scratch_root.path / SITE / NAMESPACE

    done = scratch_root.dpkg("-i", str(trigger_deb))
    assert done.returncode == 0, done.stdout + done.stderr
    # Both in one dpkg run: the trigger brings the registry in line once, at the end.
    done = scratch_root.dpkg("-i", str(debs[ALPHA]), str(debs[BETA]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("Processing triggers for python3-ns-strip") == 1, done.stdout
    assert "could not be brought in line" not in done.stderr
    assert scratch_root.registry_counts() == {NAMESPACE: 2, f"{NAMESPACE}.plugins": 2}

    both = scratch_root.imports(f"{NAMESPACE}.plugins.alpha", f"{NAMESPACE}.plugins.beta")
    assert both.returncode == 0, both.stderr
    assert both.stdout.split() == ["alpha", "beta"]

    removed = scratch_root.dpkg("-r", ALPHA)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert scratch_root.registry_counts() == {NAMESPACE: 1, f"{NAMESPACE}.plugins": 1}
    assert scratch_root.imports(f"{NAMESPACE}.plugins.beta").stdout.split() == ["beta"]
    gone = scratch_root.imports(f"{NAMESPACE}.plugins.alpha")
    assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr

    purged = scratch_root.dpkg("-P", BETA, ALPHA)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert scratch_root.registry_counts() == {}
    assert not namespace_dir.exists()
    assert not (scratch_root.path / "usr/share/ns-strip/manifests").exists()
    purged = scratch_root.dpkg("-P", "python3-ns-strip")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not (scratch_root.path / "var/lib/ns-strip").exists()


def test_placeholders_follow_the_manifest_through_the_trigger(stripped_build, scratch_root, trigger_deb, tmp_path):
    """A package built with placeholders pkgutil records it in its manifest; the trigger's
    sync creates the placeholder with the first package and removes it with the last."""
    debs, _ = stripped_build
    beta = _with_placeholders(debs[BETA], tmp_path)
    assert scratch_root.dpkg("-i", str(trigger_deb)).returncode == 0
    done = scratch_root.dpkg("-i", str(beta))
    assert done.returncode == 0, done.stdout + done.stderr
    init = scratch_root.path / SITE / NAMESPACE / "__init__.py"
    assert init.read_bytes() == PLACEHOLDER
    done = scratch_root.dpkg("-P", BETA)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (scratch_root.path / SITE / NAMESPACE).exists()
    assert scratch_root.registry_counts() == {}


def _with_placeholders(deb: Path, work: Path) -> Path:
    """The same .deb with "placeholders": "pkgutil" in its manifest, as dh_ns_strip writes it."""
    tree = work / "unpacked"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True, capture_output=True)
    manifest = next((tree / "usr/share/ns-strip/manifests").glob("*.json"))
    data = json.loads(manifest.read_text())
    data["placeholders"] = "pkgutil"
    manifest.write_text(json.dumps(data))
    md5sums = tree / "DEBIAN/md5sums"
    md5sums.write_text("".join(line for line in md5sums.read_text().splitlines(keepends=True)
                               if "usr/share/ns-strip/manifests" not in line))
    out = work / deb.name
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)], check=True,
                   capture_output=True)
    return out
