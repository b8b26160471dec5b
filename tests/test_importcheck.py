"""strip --check-imports (issue 12 §2): imports before and after, with the target interpreter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nstree import add_distribution
from realsys_support import build_legacy, fake_base, imports, install_debian_style, make_venv

from ns_strip.cli import main

PKGUTIL = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def run(*argv: str) -> tuple[int, dict]:
    import io

    out = io.StringIO()
    code = main([*argv, "--json"], stdout=out, stderr=io.StringIO())
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


def snapshot(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    python, _ = fake_base(tmp_path / "base")
    return python


def test_clean_strip_passes_the_check(base, tmp_path):
    tree = tmp_path / "tree"
    add_distribution(tree, "nsy.good", {"nsy/__init__.py": PKGUTIL, "nsy/good/__init__.py": "X = 1\n",
                                        "plain.py": "Y = 2\n"})
    code, out = run("strip", str(tree), "--check-imports", "--python", str(base))
    assert code == 0, out["findings"]
    assert "nsy/__init__.py" in out["removed"]
    assert not (tree / "nsy" / "__init__.py").exists()


def test_regression_stops_the_strip_and_changes_nothing(base, tmp_path):
    tree = tmp_path / "tree"
    # old code that reads the namespace's __file__: None once the namespace is PEP 420
    add_distribution(tree, "nsy.data", {
        "nsy/__init__.py": PKGUTIL,
        "nsy/data/__init__.py": "import os, nsy\nHOME = os.path.dirname(nsy.__file__)\n",
        "other.py": "Z = 3\n",
    })
    before = snapshot(tree)
    code, out = run("strip", str(tree), "--check-imports", "--python", str(base))
    assert code == 4
    [finding] = [f for f in out["findings"] if f["code"] == "NS135"]
    assert finding["module"] == "nsy.data" and "TypeError" in finding["error"]
    assert snapshot(tree) == before  # nothing changed
    assert not list(tmp_path.glob("ns-strip-view-*"))

    code, out = run("strip", str(tree), "--python", str(base))  # without the check: what it would do
    assert code == 0
    ok, text = imports(base, f"import sys; sys.path.insert(0, {str(tree)!r}); import nsy.data")
    assert not ok and "TypeError" in text


def test_modules_failing_before_are_not_held_against_the_strip(base, tmp_path):
    tree = tmp_path / "tree"
    add_distribution(tree, "nsy.needs", {"nsy/__init__.py": PKGUTIL,
                                         "nsy/needs/__init__.py": "import not_installed_anywhere\n"})
    code, out = run("strip", str(tree), "--check-imports", "--python", str(base))
    assert code == 0 and "nsy/__init__.py" in out["removed"]


def test_hidden_namespace_allowed_is_caught_by_the_import_check(tmp_path):
    python, site = fake_base(tmp_path / "base", with_pkg_resources=True)
    install_debian_style(build_legacy(tmp_path, "nsx.legacy", "nsx", "legacy"), site)
    venv_python, venv_site = make_venv(python, tmp_path / "v")
    install_debian_style(build_legacy(tmp_path, "nsx.mine", "nsx", "mine"), venv_site)
    before = snapshot(venv_site)
    code, out = run("strip", str(venv_site), "--allow-hidden", "nsx", "--check-imports")
    assert code == 4
    assert {f["module"] for f in out["findings"] if f["code"] == "NS135"} >= {"nsx.mine"}
    assert snapshot(venv_site) == before


def test_check_imports_runs_from_outside_the_tree_without_stdin(base, tmp_path):
    tree = tmp_path / "tree"
    add_distribution(tree, "nsy.env", {
        "nsy/__init__.py": PKGUTIL,
        "nsy/env/__init__.py": "import os, sys\nassert not os.getcwd().startswith(%r)\nassert sys.stdin is None or "
                               "sys.stdin.read() == ''\n" % str(tree),
    })
    code, out = run("strip", str(tree), "--check-imports", "--python", str(base))
    assert code == 0, out["findings"]


def test_check_imports_refuses_a_wheel(tmp_path):
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    import io

    err = io.StringIO()
    assert main(["strip", str(wheel), "--check-imports", "-o", str(tmp_path / "o.whl")], stdout=io.StringIO(),
                stderr=err) == 2
    assert "--check-imports" in err.getvalue()


def test_tree_without_metadata_checks_its_top_level(base, tmp_path):
    tree = tmp_path / "tree"
    (tree / "nsy" / "data").mkdir(parents=True)
    (tree / "nsy" / "__init__.py").write_text(PKGUTIL)
    (tree / "nsy" / "data" / "__init__.py").write_text("import os, nsy\nHOME = os.path.dirname(nsy.__file__)\n")
    code, out = run("strip", str(tree), "--check-imports", "--python", str(base))
    assert code == 4
    assert [f["module"] for f in out["findings"] if f["code"] == "NS135"] == ["nsy.data"]
    assert (tree / "nsy" / "__init__.py").exists()
