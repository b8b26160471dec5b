"""``ns-strip ext`` on real Windows DLLs (.pyd) built by mingw-w64; format contradictions."""

from __future__ import annotations

import json

from ext_toolchain import build_elf, build_macho, build_pyd, run_cli

from ns_strip.extensions import inspect_extension_file


def only_finding(out: str) -> tuple[str, str]:
    [finding] = json.loads(out)["findings"]
    return finding["code"], finding["message"]


def test_amd64_and_x86_pyd_exports_and_machines(tmp_path):
    for machine, tag, word_size in (("amd64", "cp311-win_amd64", 64), ("x86", "cp311-win32", 32)):
        path = build_pyd(tmp_path / f"foo.{tag}.pyd", machine, "PyInit_foo")
        info = inspect_extension_file(path, path.name)
        [image] = info.binary.images
        assert (info.binary.format, image.machine, image.word_size) == ("pe", machine, word_size)
        assert image.init_symbols == ("PyInit_foo",)
    code, out, _ = run_cli("ext", "--json", str(tmp_path))
    data = json.loads(out)
    assert (code, data["findings"]) == (0, [])
    assert [(e["path"], e["machine"], e["platform"]) for e in data["extensions"]] == [
        ("foo.cp311-win32.pyd", "x86", "win32"),
        ("foo.cp311-win_amd64.pyd", "amd64", "win_amd64"),
    ]


def test_32_bit_pyd_tagged_win_amd64_is_ns203(tmp_path):
    path = build_pyd(tmp_path / "foo.cp311-win_amd64.pyd", "x86", "PyInit_foo")
    code, out, _ = run_cli("ext", "--json", str(path))
    assert code == 1
    assert only_finding(out) == ("NS203", "tagged for win_amd64 but the binary is x86 PE (32-bit)")


def test_misnamed_pyd_is_ns201(tmp_path):
    path = build_pyd(tmp_path / "bar.cp311-win_amd64.pyd", "amd64", "PyInit_foo")
    code, out, _ = run_cli("ext", "--json", str(path))
    assert code == 1
    assert only_finding(out) == ("NS201", "exports PyInit_foo, not PyInit_bar: 'import bar' cannot load it")


def test_format_contradicting_the_name_is_ns203(tmp_path):
    build_pyd(tmp_path / "foo.cpython-311-x86_64-linux-gnu.so", "amd64", "PyInit_foo")
    build_elf(tmp_path / "good.cp311-win_amd64.pyd", "good")
    build_macho(tmp_path / "mac.cpython-311-x86_64-linux-gnu.so", "x86_64", "PyInit_mac")
    build_elf(tmp_path / "good.cpython-311-darwin.so", "good")
    code, out, _ = run_cli("ext", "--json", str(tmp_path))
    assert code == 1
    assert [(f["code"], f["path"], f["message"]) for f in json.loads(out)["findings"]] == [
        ("NS203", "foo.cpython-311-x86_64-linux-gnu.so", "named .so but the binary is a Windows PE DLL"),
        ("NS203", "good.cp311-win_amd64.pyd", "named .pyd (a Windows DLL) but the binary is an ELF shared object"),
        ("NS203", "good.cpython-311-darwin.so", "tagged for darwin but the binary is an ELF shared object"),
        ("NS203", "mac.cpython-311-x86_64-linux-gnu.so",
         "tagged for x86_64-linux-gnu but the binary is a Mach-O bundle"),
    ]


def test_imported_python_dll_decides_untagged_and_abi3(tmp_path):
    build_pyd(tmp_path / "versioned.pyd", "amd64", "PyInit_versioned", python_dll="python311.dll")
    build_pyd(tmp_path / "stable.pyd", "amd64", "PyInit_stable", python_dll="python3.dll")
    code, out, _ = run_cli("ext", "--json", str(tmp_path))
    data = json.loads(out)
    assert code == 0
    assert [(f["code"], f["path"], f["message"]) for f in data["findings"]] == [
        ("NS204", "versioned.pyd",
         "no ABI tag, but it links python311.dll: other Python versions will try to import it"),
    ]
    entries = {e["path"]: e for e in data["extensions"]}
    assert entries["stable.pyd"]["abi3"] is True and "python3.dll" in entries["stable.pyd"]["needed"]
    assert entries["versioned.pyd"]["abi3"] is False and "python311.dll" in entries["versioned.pyd"]["needed"]


def test_pyd_linking_another_python_than_its_tag_is_ns203(tmp_path):
    path = build_pyd(tmp_path / "foo.cp312-win_amd64.pyd", "amd64", "PyInit_foo", python_dll="python311.dll")
    code, out, _ = run_cli("ext", "--json", str(path))
    assert code == 1
    assert only_finding(out) == ("NS203", "tagged for cpython 3.12 but links python311.dll")
