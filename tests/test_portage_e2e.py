"""ns-strip.eclass under real Portage with Gentoo's real distutils-r1, building real PyPI sdists.

Every example ebuild in ``eclass-snippets/examples/`` is built here with ``ebuild … clean
install qmerge`` into a scratch ROOT (once with a Prefix ``EPREFIX``) and unmerged; what the
build log, the merged files and the imports show is what docs/gentoo.rst describes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest
from portage_bed import (
    EXAMPLES,
    PYTHON_IMPL,
    SITE,
    SNIPPETS,
    PortageBed,
    build_own_sdist,
    fetch_distfile,
    find_eclass_dir,
    import_in,
    missing,
    runtime_pylib,
    sdist_member,
    sdist_version,
)

# Portage is installed into the main CI venv only (.ci/setup.d/50-gentoo.sh).
pytestmark = pytest.mark.main_venv

VENV_SITE = Path(sysconfig.get_path("purelib"))
PREFIX = "/gentoo-prefix"


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> PortageBed:
    eclass_dir = find_eclass_dir()
    if eclass_dir is None:
        missing("Gentoo's eclasses (set NS_STRIP_GENTOO_ECLASSES, or put shared/gentoo/eclass beside the checkout)")
    for module in ("portage", "gpep517", "setuptools", "setuptools_scm", "flit_core"):
        found = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        if found.returncode != 0:
            missing(f"Python module {module} is not installed (.ci/setup.d/50-gentoo.sh installs it)")
    if not (Path(sys.prefix) / "bin" / "ebuild").is_file():
        missing("Portage's ebuild command is not in this venv")
    cache = Path(os.environ.get("NS_STRIP_DISTFILES") or tmp_path_factory.mktemp("distfiles-cache"))
    bed = PortageBed(tmp_path_factory.mktemp("portage"), eclass_dir)
    for requirement in ("jaraco.functools==3.0.0", "jaraco.classes==3.1.0", "zope.event==5.0", "fs==2.4.16"):
        bed.add_distfile(fetch_distfile(requirement, cache))
    bed.pylib = runtime_pylib(cache)
    return bed


def example(bed: PortageBed, name: str) -> Path:
    return bed.add_ebuild(EXAMPLES / f"{name}.ebuild", f"dev-python/{name}")


def jaraco_classes(bed: PortageBed) -> Path:
    """A second portion of jaraco: the jaraco.functools example, renamed."""
    text = (EXAMPLES / "jaraco-functools-3.0.0.ebuild").read_text()
    text = text.replace("Functools like those found in stdlib", "Utility functions for Python class constructs")
    text = text.replace("jaraco.functools", "jaraco.classes")
    return bed.add_ebuild(text, "dev-python/jaraco-classes-3.1.0")


def tree(directory: Path) -> dict[str, str]:
    """Every file below ``directory`` with its sha256, every directory with ``/``. Bytecode is
    hashed without its 16-byte header, which holds the source's mtime of that build."""
    found = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_dir() and not path.is_symlink():
            found[relative + "/"] = ""
        else:
            data = path.read_bytes()
            found[relative] = hashlib.sha256(data[16:] if path.suffix == ".pyc" else data).hexdigest()
    return found


def stripped_lines(log: str) -> list[str]:
    return [line.strip(" *") for line in log.splitlines() if line.lstrip(" *").startswith("Stripping ")]


def assert_bytecode_consistent(root: Path, prefix: str = "/usr") -> None:
    """gpep517's own check (the one Gentoo's QA runs): every .py has its .pyc, no stray .pyc."""
    result = subprocess.run([sys.executable, "-m", "gpep517", "verify-pyc", "--destdir", str(root), "--prefix", prefix],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def assert_imports(bed: PortageBed, site: Path, statements: str) -> None:
    result = import_in(site, statements, bed.pylib, VENV_SITE)
    assert result.returncode == 0, result.stderr


def test_eclass_dir_is_found_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NS_STRIP_GENTOO_ECLASSES", str(tmp_path))
    assert find_eclass_dir() is None  # no distutils-r1.eclass there
    (tmp_path / "distutils-r1.eclass").write_text("")
    assert find_eclass_dir() == tmp_path
    monkeypatch.delenv("NS_STRIP_GENTOO_ECLASSES")
    found = find_eclass_dir()
    assert found is None or (found.parts[-3:] == ("shared", "gentoo", "eclass")
                             and SNIPPETS.parents[1].is_relative_to(found.parents[2]))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


# -- one package at a time -------------------------------------------------------------------


def test_pkgutil_portion_is_stripped_with_its_bytecode(bed: PortageBed, root: Path) -> None:
    """jaraco.functools 3.0.0 ships a pkgutil jaraco/__init__.py; the merged image has none."""
    sdist = bed.distdir / "jaraco.functools-3.0.0.tar.gz"
    assert "extend_path" in sdist_member(sdist, "jaraco.functools-3.0.0/jaraco/__init__.py")
    merged = bed.merge(example(bed, "jaraco-functools-3.0.0"), root)
    assert stripped_lines(merged.log) == ["Stripping pkgutil-style namespace jaraco (jaraco/__init__.py)"]
    site = root / SITE.lstrip("/")
    assert not (site / "jaraco" / "__init__.py").exists()
    assert not [p.name for p in (site / "jaraco" / "__pycache__").iterdir() if p.name.startswith("__init__.")]
    # gpep517 compiled three optimization levels of the module that stays.
    assert len(list((site / "jaraco" / "__pycache__").glob("functools.*.pyc"))) == 3
    assert (site / "jaraco_functools-3.0.0.dist-info" / "METADATA").read_text().count("Version: 3.0.0") == 1
    assert_bytecode_consistent(root)
    assert_imports(bed, site, "import jaraco, jaraco.functools\n"
                         "assert jaraco.__file__ is None, jaraco.__file__\n"
                         f"assert jaraco.functools.__file__.startswith({str(site)!r})\n"
                         "assert jaraco.functools.compose(str, len)('abc') == '3'")


def test_declared_namespace_stripped_by_ns_strip_first(bed: PortageBed, root: Path) -> None:
    """zope.event 5.0 declares namespace_packages=['zope']: setuptools ships no zope/__init__.py
    but an -nspkg.pth and namespace_packages.txt; ns-strip removes both in python_compile, so
    distutils-r1's own stripping after python_install finds nothing."""
    merged = bed.merge(example(bed, "zope-event-5.0"), root)
    assert stripped_lines(merged.log) == [
        f"Stripping pkg_resources-style namespace zope (zope.event-5.0-py{PYTHON_IMPL[6:]}-nspkg.pth)",
        "Stripping declaration of namespace zope (zope_event-5.0.dist-info/namespace_packages.txt)",
    ]
    # setuptools itself skipped the declared __init__.py.
    assert "zope/__init__.py (namespace package)" in merged.log
    site = root / SITE.lstrip("/")
    assert not list(site.glob("*-nspkg.pth"))
    assert not (site / "zope_event-5.0.dist-info" / "namespace_packages.txt").exists()
    assert not (site / "zope" / "__init__.py").exists()
    # distutils-r1 deleted RECORD right after installing the wheel.
    assert not (site / "zope_event-5.0.dist-info" / "RECORD").exists()
    assert_bytecode_consistent(root)
    assert_imports(bed, site, "import zope.event\nassert zope.__file__ is None\nzope.event.notify(object())")


def test_declared_namespace_same_image_whichever_strips_first(bed: PortageBed, tmp_path: Path) -> None:
    """The same package with ns-strip called after distutils-r1 has stripped (python_install_all):
    distutils-r1 removes the two files, ns-strip finds nothing left, and the image is the same."""
    first = example(bed, "zope-event-5.0")
    bed.image(first, tmp_path / "unused")
    ns_strip_first = tree(bed.image_dir("dev-python/zope-event-5.0") / SITE.lstrip("/"))

    text = first.read_text()
    text = text.replace("python_compile() {\n\tdistutils-r1_python_compile\n\tns-strip_python_compile\n}",
                        "python_install_all() {\n\tdistutils-r1_python_install_all\n"
                        "\tpython_foreach_impl ns-strip_python_install\n}")
    assert "ns-strip_python_install" in text
    later = bed.add_ebuild(text, "dev-python/zope-event-5.0-r1")
    log = bed.image(later, tmp_path / "unused")
    assert stripped_lines(log) == ["Stripping pkg_resources-style namespace zope"]  # distutils-r1's own line
    distutils_first = tree(bed.image_dir("dev-python/zope-event-5.0-r1") / SITE.lstrip("/"))
    assert distutils_first == ns_strip_first
    assert not [path for path in ns_strip_first if path.endswith(("-nspkg.pth", "namespace_packages.txt"))]


def test_hybrid_is_kept_with_ns110(bed: PortageBed, root: Path) -> None:
    """fs 2.4.16's fs/__init__.py declares a pkg_resources namespace (undeclared in setup.cfg) and
    runs the package's code: kept, with NS110 naming the blocking lines, and fs still works."""
    sdist_init = sdist_member(bed.distdir / "fs-2.4.16.tar.gz", "fs-2.4.16/fs/__init__.py")
    merged = bed.merge(example(bed, "fs-2.4.16"), root)
    assert re.search(r"^ \* NS110 fs/__init__\.py: hybrid pkg_resources-style namespace fs: kept, "
                     r"stripping is blocked by line 6: from \. import path;", merged.log, re.M), merged.log
    assert " * A hybrid __init__.py declares a namespace and also runs other code," in merged.log
    assert stripped_lines(merged.log) == []
    site = root / SITE.lstrip("/")
    assert (site / "fs" / "__init__.py").read_text() == sdist_init
    assert len(list((site / "fs" / "__pycache__").glob("__init__.*.pyc"))) == 3
    assert_bytecode_consistent(root)
    assert_imports(bed, site, "import warnings; warnings.simplefilter('ignore')\n"
                         "import fs\nassert fs.open_fs('mem://').listdir('/') == []")


# -- several packages in one ROOT ------------------------------------------------------------


def test_two_portions_side_by_side_then_unmerged(bed: PortageBed, root: Path) -> None:
    functools_ebuild = example(bed, "jaraco-functools-3.0.0")
    classes_ebuild = jaraco_classes(bed)
    bed.merge(functools_ebuild, root)
    classes = bed.merge(classes_ebuild, root)
    assert stripped_lines(classes.log) == ["Stripping pkgutil-style namespace jaraco (jaraco/__init__.py)"]
    assert bed.installed(root) == ["dev-python/jaraco-classes-3.1.0", "dev-python/jaraco-functools-3.0.0"]
    site = root / SITE.lstrip("/")
    both = "import jaraco.functools, jaraco.classes.properties\nassert jaraco.__file__ is None"
    assert_imports(bed, site, both)
    assert_bytecode_consistent(root)

    bed.unmerge(functools_ebuild, root)
    assert not (site / "jaraco" / "functools.py").exists()
    assert_imports(bed, site, "import jaraco.classes.properties")
    assert import_in(site, "import jaraco.functools", bed.pylib, VENV_SITE).returncode != 0
    assert_bytecode_consistent(root)

    bed.unmerge(classes_ebuild, root)
    assert bed.installed(root) == []
    assert not (site / "jaraco").exists()
    assert not site.exists() or not list(site.iterdir())


def test_without_ns_strip_portage_refuses_the_second_portion(bed: PortageBed, root: Path) -> None:
    """What the eclass saves a Gentoo developer from: the same two ebuilds without the
    ns-strip call both install jaraco/__init__.py, and Portage (FEATURES=protect-owned, on by
    default) refuses to merge the second over the first's files."""
    unstripped = {}
    for atom, source in (("dev-python/jaraco-functools-3.0.0-r90", example(bed, "jaraco-functools-3.0.0")),
                         ("dev-python/jaraco-classes-3.1.0-r90", jaraco_classes(bed))):
        text = source.read_text().replace("\tns-strip_python_compile\n", "")
        assert "ns-strip_python_compile" not in text
        unstripped[atom] = bed.add_ebuild(text, atom)
    first, second = unstripped.values()
    bed.merge(first, root)
    assert (root / SITE.lstrip("/") / "jaraco" / "__init__.py").is_file()
    bed.ebuild(second, "manifest", root=root)
    refused = bed.ebuild(second, "clean", "install", "qmerge", root=root, check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output[-3000:]
    assert "Detected file collision(s)" in output, output[-3000:]
    assert f"{SITE}/jaraco/__init__.py" in output
    assert bed.installed(root) == ["dev-python/jaraco-functools-3.0.0-r90"]

    # The old way out, a hand "rm …/jaraco/__init__.py", leaves its bytecode: gpep517's
    # verify-pyc (Gentoo's QA check) reports it as stray.
    (root / SITE.lstrip("/") / "jaraco" / "__init__.py").unlink()
    verified = subprocess.run([sys.executable, "-m", "gpep517", "verify-pyc", "--destdir", str(root), "--prefix", "/usr"],
                              capture_output=True, text=True, timeout=120)
    stray = sorted(line for line in verified.stdout.splitlines() if line.startswith("stray:"))
    assert len(stray) == 3 and all("/jaraco/__pycache__/__init__." in line for line in stray), verified.stdout


def registry_packages(eroot: Path) -> list[str]:
    db = eroot / "var" / "lib" / "ns-strip" / "registry.sqlite3"
    assert db.is_file(), f"no registry at {db}"
    result = subprocess.run([sys.executable, "-m", "ns_strip", "registry", "list", "--root", str(eroot), "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return sorted(entry["name"] for entry in json.loads(result.stdout)["packages"])


def test_registry_helpers_follow_merge_upgrade_and_unmerge(bed: PortageBed, root: Path) -> None:
    ebuild = example(bed, "zope-event-5.0")
    merged = bed.merge(ebuild, root)
    name = f"dev-python.zope-event.{PYTHON_IMPL}"
    assert f"Registered {name} (zope used by 1)" in merged.log
    assert (root / "usr/share/ns-strip/manifests" / f"{name}.json").is_file()
    assert registry_packages(root) == [name]

    # An upgrade: the old version's pkg_postrm (REPLACED_BY_VERSION set) leaves the
    # registration alone, the new one's pkg_postinst registers again.
    upgrade = bed.add_ebuild(ebuild.read_text(), "dev-python/zope-event-5.0-r2")
    upgraded = bed.merge(upgrade, root)
    assert f"Re-registered {name} (zope used by 1)" in upgraded.log
    assert "Unregistered" not in upgraded.log
    assert bed.installed(root) == ["dev-python/zope-event-5.0-r2"]
    assert registry_packages(root) == [name]

    log = bed.unmerge(upgrade, root)
    assert f"Unregistered {name}" in log
    assert registry_packages(root) == []
    assert not (root / SITE.lstrip("/") / "zope").exists()


def test_prefix_keeps_files_and_registry_under_eroot(bed: PortageBed, root: Path) -> None:
    ebuild = example(bed, "zope-event-5.0")
    merged = bed.merge(ebuild, root, eprefix=PREFIX)
    eroot = root / PREFIX.lstrip("/")
    site = eroot / SITE.lstrip("/")
    assert (site / "zope" / "event" / "__init__.py").is_file()
    assert not list(site.glob("*-nspkg.pth"))
    name = f"dev-python.zope-event.{PYTHON_IMPL}"
    assert f"Registered {name} (zope used by 1)" in merged.log
    manifest = json.loads((eroot / "usr/share/ns-strip/manifests" / f"{name}.json").read_text())
    assert manifest["site_dir"] == SITE  # below EPREFIX: the Prefix is the system
    assert not (root / "var" / "lib" / "ns-strip").exists()  # nothing outside EROOT
    assert registry_packages(eroot) == [name]
    assert bed.installed(root, PREFIX) == ["dev-python/zope-event-5.0"]
    assert_bytecode_consistent(root, f"{PREFIX}/usr")
    assert_imports(bed, site, "import zope.event; assert zope.__file__ is None")
    log = bed.unmerge(ebuild, root, eprefix=PREFIX)
    assert f"Unregistered {name}" in log
    assert registry_packages(eroot) == []
    assert not (site / "zope").exists()


def test_check_imports_is_passed_when_asked(bed: PortageBed, root: Path) -> None:
    """NS_STRIP_CHECK_IMPORTS=1 reaches ns-strip strip as --check-imports --python ${PYTHON}
    (the harness test 'check_imports' shows the exact arguments): under real Portage the strip
    and its import check pass, and the namespace is stripped."""
    helped = subprocess.run([sys.executable, "-m", "ns_strip", "strip", "--help"], capture_output=True, text=True)
    assert "--check-imports" in helped.stdout
    text = (EXAMPLES / "jaraco-functools-3.0.0.ebuild").read_text()
    text = text.replace("\ninherit distutils-r1", "\nNS_STRIP_CHECK_IMPORTS=1\ninherit distutils-r1")
    assert "NS_STRIP_CHECK_IMPORTS=1" in text
    ebuild = bed.add_ebuild(text, "dev-python/jaraco-functools-3.0.0-r1")
    merged = bed.merge(ebuild, root)
    assert stripped_lines(merged.log) == ["Stripping pkgutil-style namespace jaraco (jaraco/__init__.py)"]


# -- ns-strip itself -------------------------------------------------------------------------


def test_ns_strip_ebuild_builds_from_its_sdist(bed: PortageBed, root: Path, tmp_path: Path) -> None:
    sdist = build_own_sdist(tmp_path / "sdist")
    version = sdist_version(sdist)
    # Gentoo's eclasses are test data read from outside: never part of the project.
    with tarfile.open(sdist) as archive:
        shipped = {Path(name).name for name in archive.getnames()}
    assert not shipped & {path.name for path in bed.eclass_dir.glob("*.eclass")}
    templates = sorted(EXAMPLES.glob("ns-strip-*.ebuild"))
    assert [t.name for t in templates] == [f"ns-strip-{version}.ebuild"], "rename the ebuild with the release"
    bed.add_distfile(sdist)
    ebuild = bed.add_ebuild(templates[0], f"dev-python/ns-strip-{version}")
    bed.merge(ebuild, root)
    site = root / SITE.lstrip("/")
    assert (root / "usr/share/ns-strip/ns-strip.eclass").read_bytes() == (SNIPPETS / "ns-strip.eclass").read_bytes()
    script = root / "usr/lib/python-exec" / PYTHON_IMPL / "ns-strip"
    assert script.is_file()
    assert_bytecode_consistent(root)

    stage = tmp_path / "stage"
    pkg = stage / "usr/lib/python3/dist-packages"
    (pkg / "nsx" / "a").mkdir(parents=True)
    (pkg / "nsx" / "__init__.py").write_text("__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
    (pkg / "nsx" / "a" / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(VENV_SITE)])
    assert_imports(bed, site, f"import ns_strip; assert ns_strip.__file__.startswith({str(site)!r}), ns_strip.__file__")
    result = subprocess.run([sys.executable, "-S", str(script), "strip", "--root", str(stage),
                             "/usr/lib/python3/dist-packages"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stripping pkgutil-style namespace nsx (nsx/__init__.py)" in result.stdout
    assert not (pkg / "nsx" / "__init__.py").exists()


# -- pkgcheck --------------------------------------------------------------------------------

# What pkgcheck reports on the examples and the eclass in a scratch repository, and why each
# applies only in Gentoo's main repository (::gentoo), or needs it as a master.
ALLOWED_PKGCHECK = {
    # dev-lang/python, dev-python/gpep517, more-itertools … are packages of ::gentoo.
    "NonexistentDeps": "the dependencies are packages of ::gentoo",
    "NonsolvableDepsInStable": "the dependencies are packages of ::gentoo",
    "NonsolvableDepsInDev": "the dependencies are packages of ::gentoo",
    "UnknownLicense": "licenses/ of ::gentoo holds MIT and ZPL",
    "UnknownUseFlags": "python_targets_* are described in ::gentoo's profiles/desc",
    "MissingRemoteId": "remote-id goes in the package's metadata.xml, which each repository writes",
}
# pkgcheck's GentooRepoCheck checks, skipped outside ::gentoo: what they would say.
GENTOO_ONLY_PKGCHECK = {
    "NonGentooAuthorsCopyright": "::gentoo files say '# Copyright YEAR Gentoo Authors'",
    "InvalidLicenseHeader": "::gentoo files are GPL-2 ('# Distributed under the terms of the GNU General Public License v2')",
}


def pkgcheck(bed: PortageBed, *argv: str) -> list[tuple[str, str]]:
    result = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "pkgcheck"), "scan", "--cache-dir", str(bed.base / "pkgcheck-cache"),
         "-R", "FormatReporter", "--format", "{name}|{desc}", *argv],
        capture_output=True, text=True, cwd=bed.repo, timeout=300,
        env={**os.environ, "HOME": str(bed.base)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [tuple(line.split("|", 1)) for line in result.stdout.splitlines() if "|" in line]


def test_pkgcheck_reports_only_main_repo_checks(bed: PortageBed, tmp_path: Path) -> None:
    if not (Path(sys.prefix) / "bin" / "pkgcheck").is_file():
        missing("pkgcheck is not installed (.ci/setup.d/50-gentoo.sh installs 0.10.37)")
    # A repository of its own, holding the examples and nothing the other tests add.
    scratch = PortageBed(tmp_path / "pkgcheck", bed.eclass_dir)
    for distfile in [*bed.distdir.iterdir(), build_own_sdist(tmp_path / "sdist")]:
        scratch.add_distfile(distfile)
    targets = []
    for path in sorted(EXAMPLES.glob("*.ebuild")):
        ebuild = scratch.add_ebuild(path, f"dev-python/{path.stem}")
        scratch.ebuild(ebuild, "manifest", root=tmp_path / "unused")
        targets.append(f"dev-python/{ebuild.parent.name}")
    results = pkgcheck(scratch, *targets, "eclass/ns-strip.eclass")
    unexpected = [r for r in results if r[0] not in ALLOWED_PKGCHECK]
    assert not unexpected, unexpected
    assert {name for name, _ in results} >= {"NonexistentDeps", "UnknownLicense"}  # the scan did run

    forced = pkgcheck(scratch, "-c", "EbuildHeaderCheck,EclassHeaderCheck", *targets, "eclass/ns-strip.eclass")
    assert {name for name, _ in forced} == set(GENTOO_ONLY_PKGCHECK), forced
