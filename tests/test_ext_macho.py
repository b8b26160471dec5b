"""``ns-strip ext`` on real Mach-O bundles built by clang and ld64.lld, thin and universal."""

from __future__ import annotations

import json
import struct

from ext_toolchain import build_macho, fat_binary, run_cli

from ns_strip.binfmt.macho import LC_DYLD_INFO_ONLY
from ns_strip.extensions import inspect_extension_file


def test_thin_bundle(tmp_path):
    path = build_macho(tmp_path / "foo.cpython-311-darwin.so", "arm64", "PyInit_foo")
    code, out, _ = run_cli("ext", "--json", str(path))
    data = json.loads(out)
    assert (code, data["findings"]) == (0, [])
    [entry] = data["extensions"]
    assert (entry["format"], entry["machine"], entry["exported"], entry["platform"]) == (
        "macho", "arm64", ["foo"], "darwin"
    )  # fmt: skip
    assert "architectures" not in entry


def test_dylib_install_name(tmp_path):
    path = build_macho(tmp_path / "foo.abi3.so", "x86_64", "PyInit_foo", kind="-dylib")
    info = inspect_extension_file(path, path.name)
    [image] = info.binary.images
    assert (image.machine, image.init_symbols) == ("x86_64", ("PyInit_foo",))
    assert image.soname == "@rpath/foo.abi3.so"


def test_universal_binary_from_lipo_and_from_a_hand_made_header(tmp_path):
    arm = build_macho(tmp_path / "thin" / "arm.so", "arm64", "PyInit_foo")
    intel = build_macho(tmp_path / "thin" / "intel.so", "x86_64", "PyInit_foo")
    for use_lipo in (True, False):
        path = fat_binary(tmp_path / f"{use_lipo}" / "foo.cpython-312-darwin.so", {"arm64": arm, "x86_64": intel},
                          use_lipo=use_lipo)  # fmt: skip
        code, out, _ = run_cli("ext", "--json", str(path))
        data = json.loads(out)
        assert (code, data["findings"]) == (0, [])
        assert sorted(data["extensions"][0]["architectures"]) == ["arm64", "x86_64"]
        assert data["extensions"][0]["exported"] == ["foo"]


def test_universal_binary_with_a_misnamed_slice_is_ns201(tmp_path):
    arm = build_macho(tmp_path / "thin" / "arm.so", "arm64", "PyInit_foo")
    intel = build_macho(tmp_path / "thin" / "intel.so", "x86_64", "PyInit_bar")
    path = fat_binary(tmp_path / "foo.cpython-312-darwin.so", {"arm64": arm, "x86_64": intel}, use_lipo=False)
    code, out, _ = run_cli("ext", str(path))
    assert code == 1
    assert out.splitlines()[-1] == (
        "NS201 foo.cpython-312-darwin.so: exports PyInit_bar (x86_64 slice), not PyInit_foo: "
        "'import foo' cannot load it"
    )


def test_symbol_table_is_used_without_an_export_trie(tmp_path):
    path = build_macho(tmp_path / "foo.cpython-311-darwin.so", "arm64", "PyInit_foo")
    data = bytearray(path.read_bytes())
    # Turn LC_DYLD_INFO_ONLY into a command no reader knows: only LC_SYMTAB is left.
    ncmds = struct.unpack_from("<I", data, 16)[0]
    position = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, position)
        if cmd == LC_DYLD_INFO_ONLY:
            struct.pack_into("<I", data, position, 0x7FFF0000)
        position += size
    path.write_bytes(bytes(data))
    info = inspect_extension_file(path, path.name)
    assert info.binary.images[0].init_symbols == ("PyInit_foo",)
