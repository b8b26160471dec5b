"""The Gentoo eclass: its bash test harness run against the real ns-strip, and lint.

The harness (eclass-snippets/tests/ns-strip.sh) builds wheels with setuptools, installs them
the way distutils-r1 does and runs the eclass functions on them, with stand-ins for
distutils-r1 that follow the real one's phase order; each of its tests is one pytest case
here, so a failure names the eclass behaviour that broke. The eclass with the real
distutils-r1 under real Portage, and the example ebuilds, are tests/test_portage_e2e.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from nstree import BUILD_PYTHON
from test_registry_support import require_tool, write_wrapper

SNIPPETS = Path(__file__).resolve().parent.parent / "eclass-snippets"
ECLASS = SNIPPETS / "ns-strip.eclass"
HARNESS = SNIPPETS / "tests" / "ns-strip.sh"
SHELL_FILES = [ECLASS, HARNESS, SNIPPETS / "tests" / "tests-common.sh", *sorted(SNIPPETS.glob("examples/*.ebuild"))]

# What the harness must keep covering; it may grow beyond this.
REQUIRED_TESTS = {
    "eapi7_dies", "include_guard", "pkgutil_compile", "pkg_resources_compile", "before_distutils_r1",
    "after_distutils_r1", "nspkg_left_dies", "check_imports", "keep_list", "hybrid_kept", "extra_args",
    "unparseable", "bad_record", "python_install", "not_installed_yet", "no_ns_strip", "registry_helpers",
}


def harness_tests() -> list[str]:
    listed = subprocess.run(["bash", str(HARNESS), "--list"], capture_output=True, text=True, check=True)
    return listed.stdout.split()


@pytest.fixture(scope="session")
def harness_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PATH with an ``ns-strip`` that runs this checkout under this interpreter, and a wheel cache."""
    require_tool("bash")
    require_tool("basenc")
    bin_dir = write_wrapper(tmp_path_factory.mktemp("bin"))
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHON"] = BUILD_PYTHON  # builds and installs the test wheels (see nstree.BUILD_PYTHON)
    env["NS_STRIP_TEST_WHEELS"] = str(tmp_path_factory.mktemp("wheels"))
    env["TMPDIR"] = str(tmp_path_factory.mktemp("harness"))
    return env


def test_harness_lists_every_required_test() -> None:
    listed = harness_tests()
    assert len(listed) == len(set(listed))
    missing = REQUIRED_TESTS - set(listed)
    assert not missing, f"the harness lost tests: {sorted(missing)}"


@pytest.mark.parametrize("name", harness_tests())
def test_harness(name: str, harness_env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", str(HARNESS), name], capture_output=True, text=True, env=harness_env, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert result.stdout.rstrip().splitlines()[-1] == "1 passed, 0 failed", output


def test_harness_reports_a_failure(harness_env: dict[str, str]) -> None:
    """A harness that cannot fail proves nothing: a broken eclass must turn a test red."""
    broken = ECLASS.read_text().replace('args+=( --keep "${pattern}" )', ":")
    assert broken != ECLASS.read_text()
    copy = Path(harness_env["TMPDIR"]) / "broken-eclass"
    (copy / "tests").mkdir(parents=True, exist_ok=True)
    (copy / "ns-strip.eclass").write_text(broken)
    for name in ("ns-strip.sh", "tests-common.sh"):
        shutil.copy(SNIPPETS / "tests" / name, copy / "tests" / name)
    result = subprocess.run(
        ["bash", str(copy / "tests" / "ns-strip.sh"), "keep_list"],
        capture_output=True, text=True, env=harness_env, timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == "0 passed, 1 failed"
    assert "FAIL: " in result.stderr


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: p.name)
def test_bash_syntax(path: Path) -> None:
    require_tool("bash")
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: p.name)
def test_shellcheck_clean(path: Path) -> None:
    shellcheck = require_tool("shellcheck")
    result = subprocess.run(
        [shellcheck, "-s", "bash", "-x", path.name], capture_output=True, text=True, cwd=path.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_directives_do_not_hide_real_problems(tmp_path: Path) -> None:
    """The file-wide directives name single checks: an unquoted expansion is still caught."""
    shellcheck = require_tool("shellcheck")
    text = ECLASS.read_text().replace('_ns-strip_run "${args[@]}"', "_ns-strip_run ${args[@]}")
    assert text != ECLASS.read_text()
    copy = tmp_path / "ns-strip.eclass"
    copy.write_text(text)
    result = subprocess.run([shellcheck, "-s", "bash", str(copy)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "SC2068" in result.stdout


def test_eclass_documents_every_function_and_variable() -> None:
    text = ECLASS.read_text()
    for tag in ("@ECLASS: ns-strip.eclass", "@MAINTAINER:", "@SUPPORTED_EAPIS: 8", "@BLURB:", "@DESCRIPTION:"):
        assert f"# {tag}" in text, tag
    functions = re.findall(r"^([\w-]+)\(\) \{", text, re.M)
    assert "ns-strip_python_compile" in functions
    for function in functions:
        assert f"# @FUNCTION: {function}\n" in text, function
        body = text.split(f"\n{function}() {{\n", 1)[1]
        assert body.startswith('\tdebug-print-function "${FUNCNAME}" "$@"\n'), function
    variables = set(re.findall(r"\$\{(NS_STRIP_[A-Z_]+)", text))
    assert {"NS_STRIP_KEEP", "NS_STRIP_ARGS", "NS_STRIP_STRICT"} <= variables
    for variable in variables:
        assert f"# @ECLASS_VARIABLE: {variable}\n" in text, variable


def test_docs_document_the_eclass() -> None:
    readme = (SNIPPETS.parent / "docs" / "gentoo.rst").read_text()
    text = ECLASS.read_text()
    for name in re.findall(r"^(ns-strip_[\w]+)\(\) \{", text, re.M):
        assert name in readme, f"README does not mention {name}"
    for variable in re.findall(r"^# @ECLASS_VARIABLE: (\w+)", text, re.M):
        assert variable in readme, f"README does not mention {variable}"
