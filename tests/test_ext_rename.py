"""``ns-strip ext --rename``: untagged extensions get the interpreter's tag, RECORD follows."""

from __future__ import annotations

import importlib.machinery
import json
from pathlib import Path

from ext_toolchain import build_elf, build_pyd, import_in_subprocess, run_cli

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
RECORD = "good-1.0.dist-info/RECORD"


def site_with_record(site: Path) -> Path:
    build_elf(site / "good.so", "good")
    (site / "good-1.0.dist-info").mkdir()
    (site / RECORD).write_text(
        "good.so,sha256=abcdef,16000\ngood-1.0.dist-info/METADATA,sha256=012345,60\ngood-1.0.dist-info/RECORD,,\n"
    )
    return site


def test_rename_adds_the_interpreter_tag_and_rewrites_record(tmp_path):
    site = site_with_record(tmp_path)
    code, out, err = run_cli("ext", "--rename", str(site))
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [f"Renaming good.so to good{SUFFIX}", f"Updating {RECORD}"]
    assert not (site / "good.so").exists() and (site / f"good{SUFFIX}").is_file()
    assert (site / RECORD).read_text() == (
        f"good{SUFFIX},sha256=abcdef,16000\ngood-1.0.dist-info/METADATA,sha256=012345,60\ngood-1.0.dist-info/RECORD,,\n"
    )
    result = import_in_subprocess(site, "good")
    assert (result.returncode, result.stdout.strip()) == (0, "42")
    # nothing is left to rename, and nothing to report
    code, out, _ = run_cli("ext", "--rename", "--json", str(site))
    data = json.loads(out)
    assert (code, data["findings"], data["renamed"]) == (0, [], [])


def test_dry_run_changes_nothing(tmp_path):
    site = site_with_record(tmp_path)
    before = (site / RECORD).read_text()
    code, out, _ = run_cli("ext", "--rename", "--dry-run", str(site))
    assert out.splitlines()[:2] == [f"[dry run] Renaming good.so to good{SUFFIX}", f"[dry run] Updating {RECORD}"]
    code, out, _ = run_cli("ext", "--rename", "--dry-run", "--json", str(site))
    data = json.loads(out)
    assert code == 0
    assert (data["dry_run"], data["renamed"]) == (True, [{"from": "good.so", "to": f"good{SUFFIX}"}])
    assert data["extensions"][0]["path"] == f"good{SUFFIX}"
    assert (site / "good.so").is_file() and not (site / f"good{SUFFIX}").exists()
    assert (site / RECORD).read_text() == before


def test_misnamed_extension_is_not_renamed(tmp_path):
    build_elf(tmp_path / "other.so", "good")
    code, out, _ = run_cli("ext", "--rename", "--json", str(tmp_path))
    data = json.loads(out)
    assert code == 1
    assert [(f["code"], f["message"]) for f in data["findings"]] == [
        ("NS201", f"not renamed to other{SUFFIX}: it exports the init function of good, not of other"),
        ("NS204", "no ABI tag: every Python version will try to import it (ns-strip ext --rename adds one)"),
    ]
    assert data["renamed"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.so"]


def test_existing_target_is_an_error_and_nothing_changes(tmp_path):
    site = site_with_record(tmp_path)
    build_elf(site / f"good{SUFFIX}", "good")
    build_elf(site / "pkg" / "second.so", "second")
    before = (site / RECORD).read_text()
    code, out, err = run_cli("ext", "--rename", str(site))
    assert (code, out) == (3, "")
    assert err == f"ns-strip: error: {site}: cannot rename good.so to good{SUFFIX}: the target exists\n"
    assert (site / "good.so").is_file() and (site / "pkg" / "second.so").is_file()
    assert (site / RECORD).read_text() == before


def test_tag_for_another_python_than_the_site_dir_is_refused(tmp_path):
    site = tmp_path / "lib" / "python3.12" / "site-packages"
    build_elf(site / "good.so", "good")
    code, out, _ = run_cli("ext", "--rename", "--python-tag", "cpython-311-x86_64-linux-gnu", "--json", str(site))
    assert code == 1
    assert [(f["code"], f["message"]) for f in json.loads(out)["findings"]] == [
        ("NS203", "not renamed to good.cpython-311-x86_64-linux-gnu.so: tagged for cpython 3.11 but installed for "
                  "Python 3.12 (python3.12/ in its path)"),
        ("NS204", "no ABI tag: every Python version will try to import it (ns-strip ext --rename adds one)"),
    ]  # fmt: skip
    code, out, _ = run_cli("ext", "--rename", "--python-tag", ".cpython-312-x86_64-linux-gnu.so", str(site))
    assert (code, out.splitlines()[0]) == (0, "Renaming good.so to good.cpython-312-x86_64-linux-gnu.so")


def test_pyd_gets_a_windows_tag_only(tmp_path):
    build_pyd(tmp_path / "foo.pyd", "amd64", "PyInit_foo", python_dll="python311.dll")
    code, out, _ = run_cli("ext", "--rename", "--json", str(tmp_path))
    assert code == 1
    [refusal] = [f for f in json.loads(out)["findings"] if f["code"] == "NS203"]
    assert refusal["message"] == (
        f"not renamed to foo{SUFFIX}: named .so but the binary is a Windows PE DLL"
    )
    code, out, _ = run_cli("ext", "--rename", "--python-tag", "cpython-311-x86_64-linux-gnu", str(tmp_path))
    assert "not renamed to foo.cpython-311-x86_64-linux-gnu.pyd: no Python imports 'foo' from a file of that " \
        "name" in out
    code, out, _ = run_cli("ext", "--rename", "--python-tag", "cp311-win_amd64", str(tmp_path))
    assert (code, out.splitlines()[0]) == (0, "Renaming foo.pyd to foo.cp311-win_amd64.pyd")
    assert (tmp_path / "foo.cp311-win_amd64.pyd").is_file()


def test_rename_option_errors(tmp_path):
    build_elf(tmp_path / "good.so", "good")
    assert run_cli("ext", "--python-tag", "abi3", str(tmp_path))[0] == 2
    code, _, err = run_cli("ext", "--rename", "--python-tag", "nonsense", str(tmp_path))
    assert code == 2 and "--python-tag: 'nonsense' is not an ABI tag" in err
    assert run_cli("ext", str(tmp_path / "missing.so"))[0] == 2
    assert (tmp_path / "good.so").is_file()
