"""``ns-strip render rpm`` with real RPM: rpmbuild builds noarch RPMs from real PyPI wheels that
share the ``jaraco`` namespace, ``rpm --root --dbpath`` installs and erases them.

The spec is the recipe of docs/rpm.rst: install the wheel into ``%{buildroot}``, compile
bytecode with the build's timestamp (Fedora clamps mtimes to ``SOURCE_DATE_EPOCH``, which it
takes from each package's changelog), ``ns-strip strip --manifest-package``, then ``%files -f``
from ``ns-strip render rpm``.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from portage_bed import import_in, missing, runtime_pylib

SITE = f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
VENV_SITE = Path(sysconfig.get_path("purelib"))

# Real wheels from PyPI: (file name, sha256).
WHEELS = {
    # legacy: jaraco/__init__.py is pkgutil-style
    "jaraco.functools==3.0.0": ("jaraco.functools-3.0.0-py2.py3-none-any.whl",
                                "1db5ed25d8bb6cafc48b1c575743e1b4847a5ca7fca72497e89723832aa52529"),
    # legacy too, with the very same jaraco/__init__.py
    "jaraco.classes==3.1.0": ("jaraco.classes-3.1.0-py2.py3-none-any.whl",
                              "116429c2047953f525afdcae165475c4589c7b14870e78b2d068ecb01018827e"),
    # PEP 420: no jaraco/__init__.py
    "jaraco.classes==3.2.3": ("jaraco.classes-3.2.3-py3-none-any.whl",
                              "2353de3288bc6b82120752201c6b1c1a14b058267fa424ed5ce5984e3b922158"),
}

SPEC = """\
%global sitelib {site}
# Only what this spec does; the distribution's brp scripts are not what is tested.
%global __os_install_post %{{nil}}
Name: {name}
Version: {version}
Release: 1
Summary: {name} for the ns-strip tests
License: MIT
BuildArch: noarch
AutoReqProv: no

%description
{name}, built from {wheel_name}.

%install
%{{python}} -m installer --no-compile-bytecode --destdir %{{buildroot}} --prefix /usr {wheel}
# As Fedora's build does: mtimes clamped to this package's SOURCE_DATE_EPOCH, then bytecode.
find %{{buildroot}} -exec touch -h -d @{epoch} {{}} +
env -u SOURCE_DATE_EPOCH %{{python}} -m compileall -q -o 0 -o 1 -s %{{buildroot}} -p / %{{buildroot}}%{{sitelib}}
{strip}
"""

WITH_NS_STRIP = """\
%{ns_strip} strip --root %{buildroot} %{sitelib} --manifest-package %{name}
%{ns_strip} render rpm %{buildroot}/usr/share/ns-strip/manifests/%{name}.json -o %{_builddir}

%files -f %{name}.files
"""

# What a packager writes without ns-strip: jaraco/ looks like a regular package (it has an
# __init__.py), so the package owns it with all below, as %pyproject_save_files would.
WITHOUT_NS_STRIP = """\

%files
%{{sitelib}}/jaraco/
%{{sitelib}}/{dist_info}/
"""


class RpmBed:
    def __init__(self, base: Path, cache: Path) -> None:
        self.base = base
        self.cache = cache
        self.topdir = base / "rpmbuild"
        self.pylib = runtime_pylib(cache)

    def wheel(self, requirement: str) -> Path:
        name, sha256 = WHEELS[requirement]
        path = self.cache / name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            path.unlink()  # a download cut short: fetch it again
        if not path.is_file():
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                 "-d", str(self.cache), requirement],
                capture_output=True, text=True, timeout=300,
            )
            if result.returncode != 0 or not path.is_file():
                missing(f"cannot download {requirement} from PyPI: {result.stderr.strip()[-300:]}")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256, path
        return path

    def build(self, requirement: str, name: str, epoch: int, ns_strip: bool) -> Path:
        """One noarch RPM of the wheel; ``epoch`` stands for its changelog date."""
        project, version = requirement.split("==")
        wheel = self.wheel(requirement)
        dist_info = f"{project}-{version}.dist-info"
        strip = WITH_NS_STRIP if ns_strip else WITHOUT_NS_STRIP.format(dist_info=dist_info)
        spec = self.base / f"{name}.spec"
        spec.write_text(SPEC.format(site=SITE, name=name, version=version, wheel=wheel, wheel_name=wheel.name,
                                    epoch=epoch, strip=strip))
        env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH", "PYTHONPATH")}
        result = subprocess.run(
            ["rpmbuild", "-bb", "--define", f"_topdir {self.topdir}", "--define", f"python {sys.executable}",
             "--define", f"ns_strip {sys.executable} -m ns_strip", str(spec)],
            capture_output=True, text=True, env=env, timeout=300,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        rpm = self.topdir / "RPMS" / "noarch" / f"{name}-{version}-1.noarch.rpm"
        assert rpm.is_file(), result.stdout[-2000:]
        return rpm


class RpmRoot:
    """A scratch root with its own RPM database."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.run("--initdb", check=True)
        self.site = root / SITE.lstrip("/")

    def run(self, *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["rpm", "--root", str(self.root), "--dbpath", "/var/lib/rpm", *argv],
                                capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def install(self, *rpms: Path) -> subprocess.CompletedProcess[str]:
        return self.run("-i", "--nodeps", *map(str, rpms))

    def installed(self) -> list[str]:
        return sorted(self.run("-qa", "--qf", "%{NAME}\\n", check=True).stdout.split())


@pytest.fixture(scope="session")
def rpm_bed(tmp_path_factory: pytest.TempPathFactory) -> RpmBed:
    for tool in ("rpmbuild", "rpm"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            missing(f"{tool} is not installed (Debian package rpm)")
    cache = Path(os.environ.get("NS_STRIP_DISTFILES") or tmp_path_factory.mktemp("wheels-cache"))
    return RpmBed(tmp_path_factory.mktemp("rpm"), cache)


def assert_imports(bed: RpmBed, root: RpmRoot, statements: str) -> None:
    result = import_in(root.site, statements, bed.pylib, VENV_SITE)
    assert result.returncode == 0, result.stderr


def test_legacy_and_pep420_portions_install_side_by_side_and_erase(rpm_bed: RpmBed, tmp_path: Path) -> None:
    legacy = rpm_bed.build("jaraco.functools==3.0.0", "python3-jaraco-functools", 1577000000, ns_strip=True)
    pep420 = rpm_bed.build("jaraco.classes==3.2.3", "python3-jaraco-classes", 1660000000, ns_strip=True)
    listed = subprocess.run(["rpm", "-qlp", str(legacy)], capture_output=True, text=True, check=True).stdout
    assert f"{SITE}/jaraco/functools.py" in listed.split()
    assert "__init__" not in listed  # stripped with its bytecode
    # Both co-own the namespace directory, neither owns it outright.
    for rpm in (legacy, pep420):
        dirs = subprocess.run(["rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEMODES:perms}\\n]", str(rpm)],
                              capture_output=True, text=True, check=True).stdout
        assert re.search(rf"^{re.escape(SITE)}/jaraco d", dirs, re.M), dirs

    root = RpmRoot(tmp_path / "root")
    result = root.install(legacy, pep420)
    assert result.returncode == 0 and "conflicts" not in result.stderr, result.stderr
    assert root.installed() == ["python3-jaraco-classes", "python3-jaraco-functools"]
    assert not (root.site / "jaraco" / "__init__.py").exists()
    assert_imports(rpm_bed, root, "import jaraco.functools, jaraco.classes.properties\nassert jaraco.__file__ is None")

    root.run("-e", "python3-jaraco-functools", check=True)
    assert (root.site / "jaraco").is_dir()
    assert not (root.site / "jaraco" / "functools.py").exists()
    assert_imports(rpm_bed, root, "import jaraco.classes.properties")
    assert import_in(root.site, "import jaraco.functools", rpm_bed.pylib, VENV_SITE).returncode != 0

    root.run("-e", "python3-jaraco-classes", check=True)
    assert root.installed() == []
    assert not (root.site / "jaraco").exists()
    assert not root.site.exists() or not [p for p in root.site.iterdir() if p.name.startswith("jaraco")]


def test_without_ns_strip_rpm_reports_the_conflict(rpm_bed: RpmBed, tmp_path: Path) -> None:
    """Two legacy portions ship the same jaraco/__init__.py. RPM lets identical files be shared,
    but their bytecode, compiled in builds with different dates, differs: the second package is
    refused. Stripped, the same two install side by side."""
    plain_functools = rpm_bed.build("jaraco.functools==3.0.0", "plain-jaraco-functools", 1577000000, ns_strip=False)
    plain_classes = rpm_bed.build("jaraco.classes==3.1.0", "plain-jaraco-classes", 1576700000, ns_strip=False)
    root = RpmRoot(tmp_path / "plain")
    root.install(plain_functools).check_returncode()
    refused = root.install(plain_classes)
    assert refused.returncode != 0
    pyc = f"{SITE}/jaraco/__pycache__/__init__.cpython-{sys.version_info.major}{sys.version_info.minor}.pyc"
    assert re.search(rf"file {re.escape(pyc)} from install of plain-jaraco-classes-3\.1\.0-1\.noarch conflicts "
                     r"with file from package plain-jaraco-functools-3\.0\.0-1\.noarch", refused.stderr), refused.stderr
    assert f"file {SITE}/jaraco/__init__.py " not in refused.stderr  # the identical source is shared
    assert root.installed() == ["plain-jaraco-functools"]

    stripped_functools = rpm_bed.build("jaraco.functools==3.0.0", "stripped-jaraco-functools", 1577000000, True)
    stripped_classes = rpm_bed.build("jaraco.classes==3.1.0", "stripped-jaraco-classes", 1576700000, True)
    clean = RpmRoot(tmp_path / "stripped")
    result = clean.install(stripped_functools, stripped_classes)
    assert result.returncode == 0, result.stderr
    assert_imports(rpm_bed, clean, "import jaraco.functools, jaraco.classes.properties")
    clean.run("-e", "stripped-jaraco-functools", "stripped-jaraco-classes", check=True)
    assert not (clean.site / "jaraco").exists()


HOSTILE_NAMES = [
    "pct%name.py", "pct%{name}.py", "br[1].py", "st*r.py", "q?.py", "b{a,b}.py", "back\\slash.py",
    'dq"x.py', "sp ace.py", 'sp "q".py', "dollar$x.py", "caf\u00e9.py",
    # what a glob of the names above would wrongly match
    "br1.py", "stXr.py", "qZ.py", "ba.py", "bb.py", "sp a%.py",
]


@pytest.mark.parametrize("form", ["printed", "file"])
def test_file_names_rpm_would_glob_or_expand(rpm_bed: RpmBed, tmp_path: Path, form: str) -> None:
    """rpmbuild expands macros in %files (a -f list several times) and globs entries: every
    rendered entry must name exactly its own file."""
    name = f"hostile-{form}"
    stage = tmp_path / "stage"
    site = stage / SITE.lstrip("/")
    (site / "nsx" / "we[i]rd%dir").mkdir(parents=True)
    (site / "nsx" / "__init__.py").write_text("__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
    (site / "nsx" / "we[i]rd%dir" / "__init__.py").write_text("")
    for file_name in HOSTILE_NAMES:
        (site / "nsx" / file_name).write_text(f"# {file_name}\n")
    (site / "nsx" / "weird%dir").mkdir()  # what the owned directory's glob would match
    (site / "nsx" / "weird%dir" / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    stripped = subprocess.run([sys.executable, "-m", "ns_strip", "strip", "--root", str(stage), SITE,
                               "--manifest-package", name], capture_output=True, text=True, env=env)
    assert stripped.returncode == 0, stripped.stdout + stripped.stderr
    manifest = stage / "usr/share/ns-strip/manifests" / f"{name}.json"
    expected = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
    spec = tmp_path / f"{name}.spec"
    text = (f"%global __os_install_post %{{nil}}\nName: {name}\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\n"
            f"BuildArch: noarch\nAutoReqProv: no\n%description\nt\n%install\ncp -a {stage}/. %{{buildroot}}/\n")
    if form == "printed":
        rendered = subprocess.run([sys.executable, "-m", "ns_strip", "render", "rpm", str(manifest)],
                                  capture_output=True, text=True, env=env)
        assert rendered.returncode == 0, rendered.stderr
        text += rendered.stdout
    else:
        build_dir = rpm_bed.topdir / "BUILD"
        rendered = subprocess.run([sys.executable, "-m", "ns_strip", "render", "rpm", str(manifest),
                                   "-o", str(build_dir)], capture_output=True, text=True, env=env)
        assert rendered.returncode == 0, rendered.stderr
        text += f"%files -f {name}.files\n"
    spec.write_text(text)
    built = subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {rpm_bed.topdir}", str(spec)],
                           capture_output=True, text=True, env=env, timeout=300)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-4000:]
    assert "listed twice" not in output, output[-4000:]
    rpm = rpm_bed.topdir / "RPMS" / "noarch" / f"{name}-1-1.noarch.rpm"
    packaged = subprocess.run(["rpm", "-qlp", "--qf", "", str(rpm)], capture_output=True, text=True, check=True)
    files = sorted(line.lstrip("/") for line in packaged.stdout.splitlines()
                   if (stage / line.lstrip("/")).is_file())
    assert files == expected


def test_file_name_rpm_cannot_package_is_bad_input(tmp_path: Path) -> None:
    """rpmbuild refuses a control character in a file name ("Illegal character"): render says so
    before a spec is written, naming the file (exit 3)."""
    site = tmp_path / SITE.lstrip("/")
    (site / "nsx").mkdir(parents=True)
    (site / "nsx" / "__init__.py").write_text("__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
    (site / "nsx" / "tab\tname.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "ns_strip", "strip", "--root", str(tmp_path), SITE,
                           "--manifest-package", "ctl"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    manifest = tmp_path / "usr/share/ns-strip/manifests/ctl.json"
    rendered = subprocess.run([sys.executable, "-m", "ns_strip", "render", "rpm", str(manifest), "-o", str(tmp_path)],
                              capture_output=True, text=True, env=env)
    assert rendered.returncode == 3, rendered.stdout + rendered.stderr
    assert len(rendered.stderr.strip().splitlines()) == 1
    assert rendered.stderr == (f"ns-strip: error: {SITE}/nsx/tab\\tname.py: rpm cannot package a file whose name "
                               "holds a control character\n")
    assert not (tmp_path / "ctl.files").exists()
