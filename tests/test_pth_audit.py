"""The .pth audit (issue 12 §3, PEP 829): path lines, namespace loaders, other import lines."""

from __future__ import annotations

import json
import os

from nstree import add_distribution, run_cli

from ns_strip.pthaudit import audit_pth

NSPKG = ("import sys, types, os;has_mfs = sys.version_info > (3, 5);p = os.path.join(sys._getframe(1).f_locals"
         "['sitedir'], *('nsp',));m = sys.modules.setdefault('nsp', types.ModuleType('nsp'))\n")
# What setuptools writes for a PEP 660 editable install with a finder, and for distutils.
EDITABLE = "import __editable___proj_1_0_finder; __editable___proj_1_0_finder.install()\n"
PRECEDENCE = ("import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') == 'local'; "
              "enabled and __import__('_distutils_hack').add_shim(); \n")


def codes(findings):
    return [f.code for f in findings]


def test_path_lines_keep_working():
    [finding] = audit_pth("extra.pth", b"# comment\n../lib\n\n/opt/other\n")
    assert finding.code == "NS131" and finding.details["path_lines"] == 2


def test_setuptools_namespace_loader_is_left_to_ns103():
    assert audit_pth("a-1.0-nspkg.pth", NSPKG.encode()) == []


def test_editable_finder_stops_at_3_18():
    [finding] = audit_pth("__editable__.proj-1.0.pth", EDITABLE.encode())
    assert finding.code == "NS132"
    assert "__editable___proj_1_0_finder" in finding.message and "3.18" in finding.message
    [on_318] = audit_pth("__editable__.proj-1.0.pth", EDITABLE.encode(), (3, 18))
    assert "ignored by the target Python 3.18" in on_318.message and on_318.details["pep829"] == "ignored"


def test_other_import_lines_name_what_stops():
    [finding] = audit_pth("distutils-precedence.pth", PRECEDENCE.encode())
    assert finding.code == "NS133" and "setuptools' override of distutils" in finding.message
    [coverage] = audit_pth("cov.pth", b"import coverage; coverage.process_startup()\n")
    assert "subprocesses are no longer measured" in coverage.message
    mixed = audit_pth("mixed.pth", b"some/dir\nimport os\nimport\tsys\n")
    assert codes(mixed) == ["NS133", "NS133"] and [f.details["line"] for f in mixed] == [2, 3]
    # an nspkg-named file with other code in it is not a plain loader
    assert codes(audit_pth("x-nspkg.pth", (NSPKG + "import evil\n").encode())) == ["NS133", "NS133"]


def test_scan_reports_every_pth_with_its_owner(tmp_path):
    site = tmp_path / "site"
    add_distribution(site, "proj", {"__editable__.proj-1.0.pth": EDITABLE, "paths.pth": "src\n"})
    (site / "hidden.pth").mkdir()  # a directory named .pth: not a file, skipped
    code, out, err = run_cli("scan", str(site), "--json")
    assert code == 0, err
    found = {(f["code"], f["path"], f["distribution"]) for f in json.loads(out)["findings"]}
    assert found == {("NS132", "__editable__.proj-1.0.pth", "proj"), ("NS131", "paths.pth", "proj")}


def test_fifo_pth_does_not_block_scan_or_doctor(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    os.mkfifo(site / "trap.pth")
    (site / "ok.pth").write_text("import os\n")
    from ns_strip.pthaudit import audit_directory

    assert codes(audit_directory(str(site))) == ["NS133"]


def test_real_editable_install_finder(tmp_path):
    """Debian 12's pip and setuptools, offline: a PEP 660 editable install of a project with a
    package_dir mapping gets a finder .pth (NS132). With the import lines not run (what Python
    3.18 does: path lines only), the editable project really is not importable. (Debian's own
    distutils-precedence.pth, NS133, is in test_real_packages.)"""
    import subprocess
    import textwrap

    project = tmp_path / "proj"
    (project / "lib" / "proj").mkdir(parents=True)
    (project / "lib" / "proj" / "__init__.py").write_text("X = 1\n")
    (project / "setup.py").write_text(textwrap.dedent("""\
        from setuptools import setup
        setup(name="proj", version="1.0", packages=["proj"], package_dir={"proj": "lib/proj"})
        """))
    (project / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=64"]\n'
                                            'build-backend = "setuptools.build_meta"\n')
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True)
    subprocess.run(["/usr/bin/python3", "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-build-isolation", "--no-deps", "--no-index", "-e", str(project)],
                   check=True, capture_output=True, timeout=300)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    code, out, err = run_cli("scan", str(site), "--json")
    found = {(f["code"], f["path"]): f for f in json.loads(out)["findings"] if f["code"].startswith("NS13")}
    assert found[("NS132", "__editable__.proj-1.0.pth")]["distribution"] == "proj"

    python = str(venv / "bin" / "python")
    run = subprocess.run([python, "-c", "import proj; print(proj.X)"], capture_output=True, text=True)
    assert run.stdout.strip() == "1"  # today: the finder line runs
    paths_only = ("import sys\nfor line in open(sys.argv[1] + '/__editable__.proj-1.0.pth'):\n"
                  "    if not line.startswith('import'): sys.path.append(line.strip())\nimport proj\n")
    run = subprocess.run([python, "-S", "-c", paths_only, str(site)], capture_output=True, text=True)
    assert "No module named 'proj'" in run.stderr  # once import lines are ignored
