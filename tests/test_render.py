"""ns-strip render: Debian, Gentoo and RPM snippets, checked by the shell and shellcheck and run
for real: the Debian ones by dpkg itself, installing into a temporary root."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_registry_support import (
    SITE,
    System,
    ns_strip,
    portion,
    require_tool,
    subprocess_env,
    write_wrapper,
)

from ns_strip.registry import PLACEHOLDER


@pytest.fixture
def system(tmp_path: Path) -> System:
    return System(tmp_path / "root")


@pytest.fixture
def path_with_ns_strip(tmp_path: Path) -> str:
    return f"{write_wrapper(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}"


def _snippets(*argv: str) -> dict[str, str]:
    result = ns_strip("render", *argv, "--json")
    assert result.code == 0, result.err
    return {s["kind"]: s["text"] for s in result.json["snippets"]}


def _maintainer_script(snippet: str) -> str:
    """A maintainer script as dh_installdeb makes it: the snippet in place of #DEBHELPER#."""
    return "#!/bin/sh\nset -e\n\n#DEBHELPER#\n\nexit 0\n".replace("#DEBHELPER#", snippet.rstrip("\n"))


def _shell_check(path: Path, shell: str) -> None:
    parsed = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, check=False)
    assert parsed.returncode == 0, parsed.stderr
    linted = subprocess.run([require_tool("shellcheck"), "--shell", shell, str(path)], capture_output=True, text=True,
                            check=False)
    assert linted.returncode == 0, linted.stdout


def test_debian_snippets_parse_and_pass_shellcheck(tmp_path: Path) -> None:
    snippets = _snippets("debian", "--package", "python3-nsx-a", "--placeholders", "pkgutil")
    assert sorted(snippets) == ["postinst", "postrm", "prerm"]
    for kind, text in snippets.items():
        assert text.startswith("# Automatically added by ns-strip render debian\n")
        assert text.endswith("# End automatically added section\n")
        assert "command -v ns-strip" in text
        script = tmp_path / kind
        script.write_text(_maintainer_script(text))
        _shell_check(script, "sh")
    assert '[ "$1" = "configure" ]' in snippets["postinst"]
    assert "registry add --quiet --root \"${DPKG_ROOT:-/}\" --placeholders pkgutil python3-nsx-a " \
           "/usr/share/ns-strip/manifests/python3-nsx-a.json" in snippets["postinst"]


def test_debian_snippets_run_against_a_temporary_root(system: System, tmp_path: Path, path_with_ns_strip: str) -> None:
    a = system.stage("python3-nsx-a", portion("nsx", "a"), tmp_path)
    system.install(a, register=False)
    scripts = {}
    for kind, text in _snippets("debian", "--package", a.name, "--placeholders", "pkgutil").items():
        scripts[kind] = tmp_path / kind
        scripts[kind].write_text(_maintainer_script(text))
    env = subprocess_env(PATH=path_with_ns_strip, DPKG_ROOT=str(system.root))

    def run(kind: str, *argv: str) -> None:
        done = subprocess.run(["sh", str(scripts[kind]), *argv], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0 and done.stderr == "", done.stderr

    run("postinst", "configure", "")
    assert system.counts() == {"nsx": [a.name]}
    assert (system.site / "nsx" / "__init__.py").read_bytes() == PLACEHOLDER
    run("prerm", "upgrade", "1.1")  # not a removal: nothing changes
    run("postrm", "upgrade", "1.1")
    assert system.counts() == {"nsx": [a.name]}
    run("prerm", "remove")
    assert system.counts() == {}
    system.uninstall(a, register=False)
    run("postrm", "remove")
    assert system.tree() == []

    # Without ns-strip installed the scripts do nothing, and do not fail.
    bare = subprocess_env(PATH="/usr/bin:/bin", DPKG_ROOT=str(system.root))
    done = subprocess.run(["sh", str(scripts["postinst"]), "configure", ""], env=bare, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert system.counts() == {}


# What dh_python3 puts in every prerm (its fallback when py3clean is missing, made to honour
# DPKG_ROOT): the bytecode of the package's own modules goes before dpkg deletes them.
_DH_PYTHON3_PRERM = """# Automatically added by dh_python3
dpkg --root="${DPKG_ROOT:-/}" -L #PACKAGE# | sed -n 's,^\\(.*\\)/\\([^/]*\\)\\.py$,\\1/__pycache__/\\2,p' \\
	| while read -r stem; do rm -f "${DPKG_ROOT:-}$stem".*.pyc; done
find "${DPKG_ROOT:-}/usr/lib/python3/dist-packages/" -type d -name __pycache__ -empty -delete
# End automatically added section
"""


def _deb(workdir: Path, package, version: str = "1.0") -> Path:
    tree = workdir / f"deb-{package.name}"
    subprocess.run(["cp", "-a", f"{package.stage}/.", str(tree)], check=True)
    debian = tree / "DEBIAN"
    debian.mkdir()
    (debian / "control").write_text(
        f"Package: {package.name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: ns-strip tests <tests@example.org>\nDescription: namespace portion for the tests\n"
    )
    rendered = ns_strip("render", "debian", "--package", package.name, "--placeholders", "pkgutil",
                        "-o", str(workdir / "debhelper"))
    assert rendered.code == 0, rendered.err
    for kind in ("postinst", "prerm", "postrm"):
        snippet = (workdir / "debhelper" / f"{package.name}.{kind}.debhelper").read_text()
        if kind == "prerm":
            snippet = _DH_PYTHON3_PRERM.replace("#PACKAGE#", package.name) + snippet
        script = debian / kind
        script.write_text(_maintainer_script(snippet))
        script.chmod(0o755)
    deb = workdir / f"{package.name}.deb"
    subprocess.run([require_tool("dpkg-deb"), "--build", "--root-owner-group", str(tree), str(deb)],
                   check=True, capture_output=True)
    return deb


def test_seed_002_life_cycle_under_dpkg(system: System, tmp_path: Path, path_with_ns_strip: str) -> None:
    """Real .debs, real dpkg: install A, install B, remove A (B imports), remove B (nothing left)."""
    dpkg = require_tool("dpkg")
    a = system.stage("python3-nsx-a", portion("nsx", "a"), tmp_path)
    b = system.stage("python3-nsx-b", portion("nsx", "b"), tmp_path)
    debs = {p.name: _deb(tmp_path, p) for p in (a, b)}
    admin = system.root / "var/lib/dpkg"
    (admin / "info").mkdir(parents=True)
    (admin / "updates").mkdir()
    (admin / "status").touch()
    (system.root / "var/log").mkdir()
    env = subprocess_env(PATH=path_with_ns_strip)
    base = [dpkg, f"--root={system.root}", "--force-script-chrootless"]
    if os.geteuid() != 0:
        base.append("--force-not-root")

    def dpkg_run(*argv: str) -> str:
        done = subprocess.run([*base, *argv], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    dpkg_run("--install", str(debs[a.name]))
    dpkg_run("--install", str(debs[b.name]))
    assert system.counts() == {"nsx": [a.name, b.name]}
    imported = system.python("import nsx.a, nsx.b; print(nsx.a.NAME, nsx.b.NAME)")
    assert imported.stdout.split() == ["a", "b"], imported.stderr

    assert "not empty" not in dpkg_run("--remove", a.name)
    assert system.python("import nsx.b; print(nsx.b.NAME)").stdout.strip() == "b"
    assert system.counts() == {"nsx": [b.name]}

    output = dpkg_run("--remove", b.name)
    assert "not empty" not in output  # the placeholder and its bytecode went before dpkg's rmdir
    assert not (system.site / "nsx").exists()
    assert system.counts() == {}
    assert system.registry("verify").code == 0


def test_gentoo_snippet_runs_with_portage_variables(system: System, tmp_path: Path, path_with_ns_strip: str) -> None:
    a = system.stage("python3-nsx-a", portion("nsx", "a"), tmp_path)
    system.install(a, register=False)
    text = _snippets("gentoo", "--package", a.name)["ebuild"]
    snippet = tmp_path / "snippet.sh"
    snippet.write_text(text)
    _shell_check(snippet, "sh")
    harness = tmp_path / "harness.sh"
    harness.write_text(
        'ewarn() { echo "WARN: $*" >&2; }\n. "$1"\nshift\n"$@"\n'
    )

    def phase(*argv: str, **extra: str) -> None:
        # A Prefix: the registry and the manifests are below EROOT, not ROOT.
        env = subprocess_env(PATH=path_with_ns_strip, ROOT=str(system.root / "not-eroot"), EPREFIX="/gentoo-prefix",
                             EROOT=str(system.root), **extra)
        done = subprocess.run(["sh", str(harness), str(snippet), *argv], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0 and done.stderr == "", done.stderr

    phase("pkg_postinst")
    assert system.counts() == {"nsx": [a.name]}
    phase("pkg_postrm", REPLACED_BY_VERSION="1.1")  # an upgrade: the new version registers again
    assert system.counts() == {"nsx": [a.name]}
    system.uninstall(a, register=False)
    phase("pkg_postrm", REPLACED_BY_VERSION="")
    assert system.counts() == {}
    assert system.tree() == []


def test_rpm_file_lists_co_own_namespace_directories(system: System, tmp_path: Path) -> None:
    a = system.stage("python3-nsx-a", {**portion("nsx", "a"), "nsx/mod.py": ""}, tmp_path)
    b = system.stage("python3-nsx-b", portion("nsx", "b"), tmp_path)
    manifests = [str(p.stage / p.manifest.lstrip("/")) for p in (a, b)]
    lists = _snippets("rpm", *manifests, "--package", a.name)
    assert lists["files"].splitlines() == [
        "# Added by ns-strip render rpm: namespace directories are co-owned (%dir) by every",
        "# package with a portion in them; owned directories belong to python3-nsx-a alone.",
        "%files -n python3-nsx-a",
        f"%dir {SITE}/nsx",
        f"{SITE}/nsx/a/",
        f"{SITE}/nsx/mod.py",
        "/usr/share/ns-strip/manifests/python3-nsx-a.json",
    ]
    written = ns_strip("render", "rpm", *manifests, "-o", str(tmp_path / "rpm"))
    assert written.code == 0, written.err
    b_list = (tmp_path / "rpm" / "python3-nsx-b.files").read_text().splitlines()
    assert b_list == [f"%dir {SITE}/nsx", f"{SITE}/nsx/b/", "/usr/share/ns-strip/manifests/python3-nsx-b.json"]


def test_debian_output_dir_merges_like_debhelper(tmp_path: Path) -> None:
    out = tmp_path / "debian"
    out.mkdir()
    other = "# Automatically added by dh_python3\npy3compile -p python3-nsx-a\n# End automatically added section\n"
    (out / "python3-nsx-a.postinst.debhelper").write_text(other)
    (out / "python3-nsx-a.prerm.debhelper").write_text(other.replace("py3compile", "py3clean"))
    for _ in range(2):  # rendering again replaces, never duplicates
        assert ns_strip("render", "debian", "--package", "python3-nsx-a", "-o", str(out)).code == 0
    postinst = (out / "python3-nsx-a.postinst.debhelper").read_text()
    prerm = (out / "python3-nsx-a.prerm.debhelper").read_text()
    assert postinst.startswith(other) and postinst.count("ns-strip render debian") == 1
    assert prerm.endswith(other.replace("py3compile", "py3clean")) and prerm.count("ns-strip render debian") == 1


@pytest.mark.parametrize("argv, code, problem", [
    (["rpm", "--package", "python3-x"], 2, "need the manifest of python3-x"),
    (["debian"], 2, "name a package"),
    (["gentoo", "--package", "bad name"], 2, "not valid"),
    (["rpm", "/nonexistent/m.json"], 3, "no such manifest"),
])
def test_render_usage_and_input_errors(argv: list[str], code: int, problem: str) -> None:
    result = ns_strip("render", *argv)
    assert result.code == code
    assert problem in result.err and len(result.err.splitlines()) == 1
