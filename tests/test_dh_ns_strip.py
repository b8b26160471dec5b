"""dh_ns_strip as debhelper runs it: package selection, options, config files, autoscripts, the
debhelper log, the sequence add-on, and ``ns-strip install-debhelper``.

These run the real helper against the real debhelper (its option parser, dh's sequencer) on
staged trees; tests/test_debian_e2e.py builds and installs real .debs.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from debhelper_support import (
    debian_env,
    install_helpers,
    require_tools,
    run,
    write_debian_dir,
)
from nstree import PKG_RESOURCES_INIT, PKGUTIL_INIT, add_distribution, run_cli, snapshot

from ns_strip.debhelper import HELPER_FILES, read_helper_file
from ns_strip.debhelper.dhlib import escape_shell

SITE = "usr/lib/python3/dist-packages"
MANIFESTS = "usr/share/ns-strip/manifests"


@pytest.fixture(scope="module")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("perl", "dh", "dpkg-architecture")
    return install_helpers(tmp_path_factory.mktemp("helpers"))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source tree after dh_auto_install: python3-ns-a (all) and python3-ns-b (any) both
    ship the legacy init of namespace ns; python3-ns-doc ships no Python at all."""
    source = tmp_path / "nsdemo"
    write_debian_dir(source, {"python3-ns-a": "all", "python3-ns-b": "any", "python3-ns-doc": "all"})
    add_distribution(source / "debian/python3-ns-a" / SITE, "ns.a",
                     {"ns/__init__.py": PKGUTIL_INIT, "ns/a/__init__.py": "A = 1\n"})
    add_distribution(source / "debian/python3-ns-b" / SITE, "ns.b",
                     {"ns/__init__.py": PKG_RESOURCES_INIT, "ns/b/__init__.py": "B = 1\n"})
    (source / "debian/python3-ns-doc/usr/share/doc/python3-ns-doc").mkdir(parents=True)
    return source


def dh_ns_strip(helpers: Path, source: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([helpers / "usr/bin/dh_ns_strip", *args], source, debian_env(helpers, source.parent, **env))


def stripped(source: Path, package: str) -> bool:
    return not (source / "debian" / package / SITE / "ns/__init__.py").exists()


def manifest_of(source: Path, package: str) -> dict:
    return json.loads((source / "debian" / package / MANIFESTS / f"{package}.json").read_text())


def test_strips_each_package_and_ships_a_manifest_without_scripts(helpers, source):
    debian = source / "debian"
    (debian / "python3-ns-a.postinst.debhelper").write_text("# earlier postinst snippet\n")

    done = dh_ns_strip(helpers, source)
    assert done.returncode == 0, done.stderr
    assert "Stripping pkgutil-style namespace ns (ns/__init__.py)" in done.stdout

    for package in ("python3-ns-a", "python3-ns-b"):
        site = debian / package / SITE
        assert stripped(source, package)
        record = next(site.glob("*.dist-info/RECORD")).read_text()
        assert "ns/__init__.py" not in record
        manifest_file = debian / package / "usr/share/ns-strip/manifests" / f"{package}.json"
        manifest = json.loads(manifest_file.read_text())
        assert (manifest["package"], manifest["site_dir"], manifest["namespaces"]) == (package, "/" + SITE, ["ns"])
        # dh_fixperms has run before dh_ns_strip: the modes must be right already.
        assert stat.S_IMODE(manifest_file.stat().st_mode) == 0o644
        assert stat.S_IMODE(manifest_file.parent.stat().st_mode) == 0o755
        assert stat.S_IMODE((debian / package / "usr/share/ns-strip").stat().st_mode) == 0o755

    # The registry follows the manifests through python3-ns-strip's file trigger: no snippets.
    assert (debian / "python3-ns-a.postinst.debhelper").read_text() == "# earlier postinst snippet\n"
    assert sorted(p.name for p in debian.glob("*.debhelper")) == ["python3-ns-a.postinst.debhelper"]
    assert "placeholders" not in manifest_of(source, "python3-ns-a")
    assert not (debian / "python3-ns-b.substvars").exists()

    # Nothing for the package without Python files.
    assert snapshot(debian / "python3-ns-doc") == {"usr": "<dir>", "usr/share": "<dir>",
                                                   "usr/share/doc": "<dir>", "usr/share/doc/python3-ns-doc": "<dir>"}
    assert not list(debian.glob("python3-ns-doc.*.debhelper"))


@pytest.mark.parametrize(("args", "env", "acted_on"), [
    ((), {}, {"python3-ns-a", "python3-ns-b"}),
    (("-ppython3-ns-a",), {}, {"python3-ns-a"}),
    (("--package=python3-ns-b",), {}, {"python3-ns-b"}),
    (("-Npython3-ns-a",), {}, {"python3-ns-b"}),
    (("-i",), {}, {"python3-ns-a"}),
    (("-a",), {}, {"python3-ns-b"}),
    ((), {"DH_INTERNAL_OPTIONS": "-a"}, {"python3-ns-b"}),
    ((), {"DH_INTERNAL_OPTIONS": "-ppython3-ns-a\x1e-ppython3-ns-doc"}, {"python3-ns-a"}),
    ((), {"DH_OPTIONS": "-Npython3-ns-b"}, {"python3-ns-a"}),
    (("-O--buildsystem=pybuild", "-O-i"), {}, {"python3-ns-a"}),
])
def test_package_selection_is_debhelpers(helpers, source, args, env, acted_on):
    done = dh_ns_strip(helpers, source, *args, **env)
    assert done.returncode == 0, done.stderr
    for package in ("python3-ns-a", "python3-ns-b"):
        assert stripped(source, package) == (package in acted_on), package
        assert (source / "debian" / package / MANIFESTS / f"{package}.json").exists() == (package in acted_on)


def test_unknown_option_is_refused_before_anything_changes(helpers, source):
    before = snapshot(source)
    done = dh_ns_strip(helpers, source, "--frobnicate")
    assert done.returncode != 0
    assert "dh_ns_strip: error: unknown option" in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(source) == before


def test_own_options_directly_and_through_dh(helpers, source):
    # dh passes "dh $@ --keep=..." to every helper as -O--keep=...; Dh_Getopt hands it to us.
    done = dh_ns_strip(helpers, source, "-O--keep=ns", "--placeholders=pkgutil")
    assert done.returncode == 0, done.stderr
    assert not stripped(source, "python3-ns-a") and not stripped(source, "python3-ns-b")
    assert manifest_of(source, "python3-ns-a")["placeholders"] == "pkgutil"


def test_bad_placeholders_value_is_a_usage_error(helpers, source):
    before = snapshot(source)
    done = dh_ns_strip(helpers, source, "--placeholders=maybe")
    assert done.returncode == 2
    assert done.stderr.startswith("dh_ns_strip: error: --placeholders 'maybe' is not one of none, pkgutil")
    assert snapshot(source) == before


def test_no_act_changes_nothing_and_verbose_shows_the_plan(helpers, source):
    before = snapshot(source)
    done = dh_ns_strip(helpers, source, "--no-act", DH_VERBOSE="1")
    assert done.returncode == 0, done.stderr
    assert snapshot(source) == before
    lines = done.stdout.splitlines()
    assert "\tns-strip strip --root debian/python3-ns-a /usr/lib/python3/dist-packages --dry-run" in lines
    assert "\tpython3-ns-a: [dry run] Stripping pkgutil-style namespace ns (ns/__init__.py)" in lines
    assert ("\tns-strip manifest --root debian/python3-ns-b /usr/lib/python3/dist-packages "
            "--package python3-ns-b") in lines
    assert not [line for line in lines if "autosnippet" in line]


def test_verbose_echoes_each_command_as_debhelper_does(helpers, source):
    done = dh_ns_strip(helpers, source, "-ppython3-ns-a", "--keep=other*", DH_VERBOSE="1")
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if line.startswith("\tns-strip ")]
    assert commands == [
        "\tns-strip strip --root debian/python3-ns-a /usr/lib/python3/dist-packages --keep=other\\*",
        "\tns-strip manifest --root debian/python3-ns-a /usr/lib/python3/dist-packages --package python3-ns-a",
    ]
    quiet = dh_ns_strip(helpers, source, "-ppython3-ns-b")
    assert "\tns-strip" not in quiet.stdout  # without DH_VERBOSE only the actions are printed


def test_escape_shell_matches_dh_lib(helpers, source):
    words = ["plain", "a b", "glob*", 'quo"te', "do$llar", "back\\slash", "semi;colon", "tab\there", "~home"]
    perl = run(["perl", "-MDebian::Debhelper::Dh_Lib", "-e", "print escape_shell(@ARGV)", *words], source, {})
    assert perl.returncode == 0, perl.stderr
    assert escape_shell(words) == perl.stdout


def test_config_file_keeps_and_sets_placeholders(helpers, source):
    (source / "debian/python3-ns-b.ns-strip").write_text(
        "# settings for python3-ns-b\nkeep ns   # ours to keep\n\nplaceholders pkgutil\n"
    )
    done = dh_ns_strip(helpers, source)
    assert done.returncode == 0, done.stderr
    assert stripped(source, "python3-ns-a") and not stripped(source, "python3-ns-b")
    assert "placeholders" not in manifest_of(source, "python3-ns-a")
    assert manifest_of(source, "python3-ns-b")["placeholders"] == "pkgutil"


def test_unnamed_config_file_belongs_to_the_first_package(helpers, source):
    (source / "debian/ns-strip").write_text("keep ns\n")  # debhelper's rule for the main package
    done = dh_ns_strip(helpers, source)
    assert done.returncode == 0, done.stderr
    assert not stripped(source, "python3-ns-a") and stripped(source, "python3-ns-b")


@pytest.mark.parametrize(("text", "problem"), [
    ("frobnicate yes\n", "line 1: unknown directive 'frobnicate' (known: keep, placeholders, check-imports)"),
    ("check-imports maybe\n", "line 1: check-imports 'maybe' is not one of yes, no"),
    ("keep\n", "line 1: keep takes exactly one value"),
    ("# fine\nplaceholders maybe\n", "line 2: placeholders 'maybe' is not one of none, pkgutil"),
])
def test_bad_config_file_is_refused_before_any_package_changes(helpers, source, text, problem):
    # The bad file belongs to the last package: the first must not have been stripped either.
    (source / "debian/python3-ns-b.ns-strip").write_text(text)
    before = snapshot(source)
    done = dh_ns_strip(helpers, source)
    assert done.returncode == 3
    assert done.stderr.strip() == f"dh_ns_strip: error: debian/python3-ns-b.ns-strip: {problem}"
    assert snapshot(source) == before


def test_no_scripts_option_is_accepted_and_ships_the_manifest(helpers, source):
    done = dh_ns_strip(helpers, source, "-n")
    assert done.returncode == 0, done.stderr
    assert stripped(source, "python3-ns-a")
    assert (source / "debian/python3-ns-a/usr/share/ns-strip/manifests/python3-ns-a.json").is_file()
    assert not list((source / "debian").glob("*.debhelper"))


def test_package_without_namespaces_is_left_alone(helpers, source):
    site = source / "debian/python3-ns-a" / SITE
    (site / "ns/__init__.py").write_text("VERSION = '1'\n")  # a regular package: nothing to strip
    before = snapshot(source / "debian/python3-ns-a")
    done = dh_ns_strip(helpers, source, "-ppython3-ns-a", DH_VERBOSE="1")
    assert done.returncode == 0, done.stderr
    assert snapshot(source / "debian/python3-ns-a") == before
    assert "python3-ns-a: no namespace packages; no manifest" in done.stdout
    assert not list((source / "debian").glob("python3-ns-a.*.debhelper"))


def test_hybrid_init_is_kept_with_a_warning(helpers, source):
    site = source / "debian/python3-ns-a" / SITE
    (site / "ns/__init__.py").write_text(PKGUTIL_INIT + "from .a import A\n")
    done = dh_ns_strip(helpers, source, "-ppython3-ns-a")
    assert done.returncode == 0, done.stderr
    assert not stripped(source, "python3-ns-a")
    assert ("dh_ns_strip: warning: python3-ns-a: /usr/lib/python3/dist-packages: NS110 ns/__init__.py: "
            "hybrid") in done.stderr


def test_namespaces_in_two_site_dirs_are_refused_before_anything_changes(helpers, source):
    versioned = source / "debian/python3-ns-a/usr/lib/python3.11/dist-packages"
    add_distribution(versioned, "ns.c", {"ns/__init__.py": PKGUTIL_INIT, "ns/c/__init__.py": "C = 1\n"})
    before = snapshot(source)
    done = dh_ns_strip(helpers, source)
    assert done.returncode == 3
    assert ("namespace packages in more than one site dir (/usr/lib/python3.11/dist-packages, "
            "/usr/lib/python3/dist-packages)") in done.stderr
    assert snapshot(source) == before


def test_versioned_site_dir_is_stripped(helpers, source):
    site = source / "debian/python3-ns-a" / SITE
    versioned = source / "debian/python3-ns-a/usr/lib/python3.11/site-packages"
    versioned.parent.mkdir(parents=True)
    site.rename(versioned)
    done = dh_ns_strip(helpers, source, "-ppython3-ns-a")
    assert done.returncode == 0, done.stderr
    assert not (versioned / "ns/__init__.py").exists()
    manifest = json.loads((source / "debian/python3-ns-a/usr/share/ns-strip/manifests/python3-ns-a.json")
                          .read_text())
    assert manifest["site_dir"] == "/usr/lib/python3.11/site-packages"


def test_debhelper_log_is_written_only_where_dh_lib_writes_it(helpers, source):
    assert dh_ns_strip(helpers, source, "-ppython3-ns-a").returncode == 0
    assert not (source / "debian/python3-ns-a.debhelper.log").exists()  # compat 13: dh logs
    # From an override target, helpers log themselves, so dh does not run them again.
    assert dh_ns_strip(helpers, source, "-ppython3-ns-b", DH_INTERNAL_OVERRIDE="dh_ns_strip").returncode == 0
    assert (source / "debian/python3-ns-b.debhelper.log").read_text() == "dh_ns_strip\n"


def test_failed_run_writes_no_log(helpers, source):
    (source / "debian/python3-ns-a.ns-strip").write_text("bogus\n")
    done = dh_ns_strip(helpers, source, DH_INTERNAL_OVERRIDE="dh_ns_strip")
    assert done.returncode == 3
    assert not list((source / "debian").glob("*.debhelper.log"))


# -- the sequence add-on ------------------------------------------------------------------------


def dh_sequence(helpers: Path, source: Path, *args: str, **env: str) -> list[str]:
    done = run(["dh", "binary", "--no-act", *args], source, debian_env(helpers, source.parent, **env))
    assert done.returncode == 0, done.stderr
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(("build_depends", "with_args"), [
    (["dh-sequence-ns-strip"], ["--with", "python3"]),  # ns-strip's add-on loads first
    ([], ["--with", "ns-strip,python3"]),
    ([], ["--with", "python3,ns-strip"]),
    (["dh-sequence-ns-strip", "dh-sequence-python3"], []),
])
def test_addon_runs_after_dh_python3_and_before_dh_installdeb(helpers, tmp_path, build_depends, with_args):
    require_tools("dh_python3")
    source = tmp_path / "seq"
    write_debian_dir(source, {"python3-ns-a": "all"}, build_depends, dh_arguments="")
    sequence = dh_sequence(helpers, source, *with_args)
    assert sequence.count("dh_ns_strip") == 1
    assert sequence.index("dh_python3") < sequence.index("dh_ns_strip") < sequence.index("dh_installdeb")


def test_without_the_addon_dh_ns_strip_is_not_run(helpers, tmp_path):
    require_tools("dh_python3")
    source = tmp_path / "seq"
    write_debian_dir(source, {"python3-ns-a": "all"}, dh_arguments="")
    assert "dh_ns_strip" not in dh_sequence(helpers, source, "--with", "python3")


def test_promise_lets_dh_skip_packages_without_usr_lib(helpers, tmp_path):
    source = tmp_path / "seq"
    write_debian_dir(source, {"python3-ns-a": "all"}, ["dh-sequence-ns-strip"], dh_arguments="")
    # debhelper's own switch for testing NOOP promises under --no-act.
    assert "dh_ns_strip" not in dh_sequence(helpers, source, DH_INTERNAL_TEST_CAN_SKIP="1")
    (source / "debian/python3-ns-a/usr/lib").mkdir(parents=True)
    assert "dh_ns_strip" in dh_sequence(helpers, source, DH_INTERNAL_TEST_CAN_SKIP="1")


# -- ns-strip install-debhelper -------------------------------------------------------------------


def test_install_debhelper_installs_helper_addon_and_man_page(tmp_path):
    require_tools("pod2man")
    code, out, err = run_cli("install-debhelper", "--destdir", str(tmp_path), "--python", "/usr/bin/python3",
                             "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["installed"] == [str(tmp_path / p) for p in (
        "usr/bin/dh_ns_strip", "usr/share/perl5/Debian/Debhelper/Sequence/ns_strip.pm",
        "usr/share/man/man1/dh_ns_strip.1")]
    for item in HELPER_FILES:
        installed = tmp_path / item.target
        assert stat.S_IMODE(installed.stat().st_mode) == item.mode
        original = read_helper_file(item.name)
        if item.name == "dh_ns_strip":
            assert installed.read_bytes() == b"#!/usr/bin/python3\n" + original.partition(b"\n")[2]
        else:
            assert installed.read_bytes() == original
    man = (tmp_path / "usr/share/man/man1/dh_ns_strip.1").read_text()
    assert '.TH DH_NS_STRIP 1' in man and "dh_ns_strip \\- strip legacy Python namespace files" in man
    # Installing again changes nothing.
    before = snapshot(tmp_path)
    assert run_cli("install-debhelper", "--destdir", str(tmp_path), "--python", "/usr/bin/python3")[0] == 0
    assert snapshot(tmp_path) == before


def test_manual_is_valid_pod(tmp_path):
    require_tools("podchecker")
    script = tmp_path / "dh_ns_strip"
    script.write_bytes(read_helper_file("dh_ns_strip"))
    done = run(["podchecker", script], tmp_path, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr


def test_install_debhelper_refuses_bad_arguments(tmp_path):
    code, _, err = run_cli("install-debhelper", "--destdir", str(tmp_path / "missing"))
    assert code == 2 and "--destdir is not a directory" in err
    code, _, err = run_cli("install-debhelper", "--destdir", str(tmp_path), "--python", "python3")
    assert code == 2 and "--python must be an absolute path" in err
    assert list(tmp_path.iterdir()) == []


def test_install_debhelper_failure_restores_what_was_there(tmp_path):
    old_helper = tmp_path / "usr/bin/dh_ns_strip"
    old_helper.parent.mkdir(parents=True)
    old_helper.write_bytes(b"#!/bin/sh\necho old\n")
    old_helper.chmod(0o700)
    # The add-on's directory cannot be made: a file is in the way.
    (tmp_path / "usr/share").mkdir(parents=True)
    (tmp_path / "usr/share/perl5").write_text("not a directory")
    before = snapshot(tmp_path)
    code, _, err = run_cli("install-debhelper", "--destdir", str(tmp_path), "--no-man")
    assert code == 4, err
    assert "usr/share/perl5" in err and "restored" in err
    assert snapshot(tmp_path) == before
    assert stat.S_IMODE(old_helper.stat().st_mode) == 0o700


def test_makefile_installs_through_install_debhelper(tmp_path):
    require_tools("make")
    checkout = Path(__file__).resolve().parent.parent
    done = run(["make", "-C", checkout / "debian-helpers", "install", f"DESTDIR={tmp_path}",
                f"PYTHON={sys.executable}", "DH_PYTHON=/usr/bin/python3"], tmp_path,
               {"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "usr/bin/dh_ns_strip").read_bytes().startswith(b"#!/usr/bin/python3\n")
    assert (tmp_path / "usr/share/perl5/Debian/Debhelper/Sequence/ns_strip.pm").is_file()


def test_wheel_ships_the_helper_files(tmp_path):
    """After 'pip install ns-strip' the files must be there: they are package data."""
    checkout = Path(__file__).resolve().parent.parent
    code = "import sys, flit_core.buildapi as api; print(api.build_wheel(sys.argv[1]))"
    done = run([sys.executable, "-c", code, tmp_path], checkout, dict(os.environ))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / done.stdout.strip().splitlines()[-1]) as wheel:
        names = set(wheel.namelist())
    for item in HELPER_FILES:
        assert f"ns_strip/debhelper/{item.name}" in names


def _strip_has_check_imports() -> bool:
    done = subprocess.run([sys.executable, "-m", "ns_strip", "strip", "--help"], capture_output=True, text=True,
                          check=True)
    return "--check-imports" in done.stdout


@pytest.mark.parametrize("how", ["option", "config"])
def test_check_imports_is_passed_to_strip_with_each_python(helpers, source, how):
    """An opt-in: strip --check-imports --python /usr/bin/python3.X (py3versions); never
    silently ignored."""
    args = ["-ppython3-ns-a"]
    if how == "option":
        args.append("--check-imports")
    else:
        (source / "debian/python3-ns-a.ns-strip").write_text("check-imports yes\n")
    assert _strip_has_check_imports()  # this ns-strip has it: the refusal path is for older ones
    done = dh_ns_strip(helpers, source, *args, DH_VERBOSE="1")
    assert done.returncode == 0, done.stderr
    versions = run(["py3versions", "-d"], source, debian_env(None, source.parent)).stdout.split()
    strip_line = next(line for line in done.stdout.splitlines() if line.startswith("\tns-strip strip "))
    assert f"--check-imports --python /usr/bin/{versions[0]}" in strip_line
    assert stripped(source, "python3-ns-a")


def test_no_check_imports_overrides_nothing_by_default(helpers, source):
    done = dh_ns_strip(helpers, source, "-ppython3-ns-a", "--no-check-imports", DH_VERBOSE="1")
    assert done.returncode == 0, done.stderr
    assert "--check-imports" not in done.stdout
    assert stripped(source, "python3-ns-a")
