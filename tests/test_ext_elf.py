"""``ns-strip ext`` on real ELF extensions built by gcc (and clang for other machines)."""

from __future__ import annotations

import importlib.machinery
import json
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from ext_toolchain import build_cross_elf, build_elf, import_in_subprocess, run_cli, tool

from ns_strip.extensions import inspect_extension

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so
HOST_TRIPLET = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
OTHER_TRIPLET = "x86_64-linux-gnu" if platform.machine() == "aarch64" else "aarch64-linux-gnu"


def findings(output: str) -> list[tuple[str, str]]:
    return [(f["code"], f["path"]) for f in json.loads(output)["findings"]]


def test_correct_extension_imports_and_has_no_findings(tmp_path):
    build_elf(tmp_path / f"good{SUFFIX}", "good")
    result = import_in_subprocess(tmp_path, "good")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"

    code, out, err = run_cli("ext", "--json", str(tmp_path))
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["findings"] == []
    [entry] = data["extensions"]
    assert entry["path"] == f"good{SUFFIX}"
    assert entry["module"] == "good"
    assert entry["exported"] == ["good"]
    assert entry["init_symbols"] == ["PyInit_good"]
    assert entry["format"] == "elf"
    assert entry["tag"] == SUFFIX[1:-3]
    assert entry["abi3"] is False
    assert entry["word_size"] == 64 and entry["byte_order"] == "little"
    assert entry["machine"] == HOST_TRIPLET.split("-")[0].replace("i686", "i386")
    assert entry["python_version"] == "{}.{}".format(*sys.version_info[:2])


def test_misnamed_extension_is_ns201(tmp_path):
    build_elf(tmp_path / f"other{SUFFIX}", "good")
    code, out, _ = run_cli("ext", "--json", str(tmp_path / f"other{SUFFIX}"))
    assert code == 1
    data = json.loads(out)
    [finding] = data["findings"]
    assert finding["code"] == "NS201" and finding["severity"] == "error"
    assert finding["path"] == f"other{SUFFIX}"
    assert finding["message"] == "exports PyInit_good, not PyInit_other: 'import other' cannot load it"
    assert data["extensions"][0]["exported"] == ["good"]
    # and Python agrees: the file cannot be imported under its name
    assert "PyInit_other" in import_in_subprocess(tmp_path, "other").stderr


def test_untagged_extension_is_ns204(tmp_path):
    build_elf(tmp_path / "good.so", "good")
    code, out, _ = run_cli("ext", str(tmp_path))
    assert code == 0
    assert out.splitlines()[-1] == (
        "NS204 good.so: no ABI tag: every Python version will try to import it (ns-strip ext --rename adds one)"
    )


def test_wrong_machine_in_tag_is_ns203(tmp_path):
    name = f"good.cpython-311-{OTHER_TRIPLET}.so"
    build_elf(tmp_path / name, "good")
    code, out, _ = run_cli("ext", str(tmp_path / name))
    assert code == 1
    host = HOST_TRIPLET.split("-")[0]
    assert out.splitlines()[-1] == f"NS203 {name}: tagged for {OTHER_TRIPLET} but the binary is {host} ELF (64-bit)"


def test_cp310_tag_in_a_python311_site_dir_is_ns203(tmp_path):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    name = f"good.cpython-310-{HOST_TRIPLET}.so"
    build_elf(site / name, "good")
    code, out, _ = run_cli("ext", "--json", str(site))
    assert code == 1
    [finding] = json.loads(out)["findings"]
    assert finding["code"] == "NS203"
    assert finding["message"] == "tagged for cpython 3.10 but installed for Python 3.11 (python3.11/ in its path)"
    # the same file in a version-neutral directory is fine
    build_elf(tmp_path / "plain" / name, "good")
    assert run_cli("ext", str(tmp_path / "plain"))[0] == 0


def test_libpython_of_another_version_is_ns203(tmp_path):
    # A stub libpython3.10 to link against: DT_NEEDED is what is read.
    stub = tmp_path / "stub" / "libpython3.10.so.1.0"
    stub.parent.mkdir()
    src = tmp_path / "stub" / "stub.c"
    src.write_text("int Py_stub;\n")
    subprocess.run([tool("gcc"), "-shared", "-fPIC", "-Wl,-soname,libpython3.10.so.1.0", "-o", str(stub), str(src)],
                   check=True)  # fmt: skip
    name = f"good.cpython-311-{HOST_TRIPLET}.so"
    build_elf(tmp_path / "site" / name, "good", extra=("-Wl,--no-as-needed", str(stub)))
    code, out, _ = run_cli("ext", "--json", str(tmp_path / "site"))
    data = json.loads(out)
    assert "libpython3.10.so.1.0" in data["extensions"][0]["needed"]
    assert [(f["code"], f["message"]) for f in data["findings"]] == [
        ("NS203", "tagged for cpython 3.11 but links libpython3.10.so.1.0")
    ]
    assert code == 1


def test_non_ascii_module_exports_pyinitu(tmp_path):
    build_elf(tmp_path / f"héllo{SUFFIX}", "héllo")
    result = import_in_subprocess(tmp_path, "héllo")
    assert result.returncode == 0, result.stderr
    code, out, _ = run_cli("ext", "--json", str(tmp_path))
    data = json.loads(out)
    assert (code, data["findings"]) == (0, [])
    assert data["extensions"][0]["init_symbols"] == ["PyInitU_hllo_bpa"]
    assert data["extensions"][0]["exported"] == ["héllo"]


@pytest.mark.parametrize(
    "target, machine, word_size, byte_order",
    [
        ("aarch64-linux-gnu", "aarch64", 64, "little"),
        ("i386-linux-gnu", "i386", 32, "little"),
        ("powerpc64le-linux-gnu", "powerpc64le", 64, "little"),
        ("powerpc64-linux-gnu", "powerpc64", 64, "big"),
        ("riscv64-linux-gnu", "riscv64", 64, "little"),
        ("armv7-linux-gnueabihf", "arm", 32, "little"),
    ],
)
def test_other_machines_are_named_as_their_triplet(tmp_path, target, machine, word_size, byte_order):
    triplet = target.replace("armv7", "arm")
    path = build_cross_elf(tmp_path / f"foo.cpython-311-{triplet}.so", target, "PyInit_foo")
    with open(path, "rb") as stream:
        info = inspect_extension(stream, path.name)
    [image] = info.binary.images
    assert (image.machine, image.word_size, image.byte_order) == (machine, word_size, byte_order)
    assert image.init_symbols == ("PyInit_foo",)
    code, out, _ = run_cli("ext", str(path))
    assert (code, out.splitlines()[1:]) == (0, [])


def test_32_bit_binary_tagged_64_bit_is_ns203(tmp_path):
    path = build_cross_elf(tmp_path / "foo.cpython-311-x86_64-linux-gnu.so", "i386-linux-gnu", "PyInit_foo")
    code, out, _ = run_cli("ext", str(path))
    assert code == 1
    assert out.splitlines()[-1] == (
        "NS203 foo.cpython-311-x86_64-linux-gnu.so: tagged for x86_64-linux-gnu but the binary is i386 ELF (32-bit)"
    )


def test_soft_float_arm_tagged_hard_float_is_ns203(tmp_path):
    path = build_cross_elf(tmp_path / "foo.cpython-311-arm-linux-gnueabihf.so", "armv7-linux-gnueabi", "PyInit_foo")
    code, out, _ = run_cli("ext", str(path))
    assert code == 1
    assert "tagged for arm-linux-gnueabihf but the binary is arm ELF (32-bit, eabi)" in out


def test_plain_shared_library_in_a_tree_is_not_an_extension(tmp_path):
    build_cross_elf(tmp_path / "pkg" / "libhelper.so", "x86_64-linux-gnu", "helper_function")
    code, out, _ = run_cli("ext", "--json", "-v", str(tmp_path))
    assert (code, json.loads(out)["extensions"]) == (0, [])
    code, out, _ = run_cli("ext", "-v", str(tmp_path))
    assert "Skipping pkg/libhelper.so: a shared library (no tag, no init function), not an extension module" in out


class CountingReader:
    """A file object that counts the bytes read through it."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def test_a_200_mb_extension_is_read_by_its_headers_only(tmp_path):
    path = build_elf(tmp_path / f"good{SUFFIX}", "good")
    with open(path, "r+b") as stream:  # sparse: section data is found by offsets, the tail is never read
        stream.truncate(200 * 1024 * 1024)
    with open(path, "rb") as raw:
        counting = CountingReader(raw)
        info = inspect_extension(counting, path.name)
    assert info.problem is None and info.exported == ("good",)
    assert counting.bytes_read < 1024 * 1024


def test_finding_paths_are_relative_to_the_directory(tmp_path):
    build_elf(tmp_path / "pkg" / "sub" / f"other{SUFFIX}", "good")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    code, out, _ = run_cli("ext", "--json", str(tmp_path))
    data = json.loads(out)
    assert findings(out) == [("NS201", f"pkg/sub/other{SUFFIX}")]
    assert data["extensions"][0]["module"] == "pkg.sub.other"
    assert Path(tmp_path, data["extensions"][0]["path"]).is_file()


def test_machine_unknown_to_pyelftools_is_named_not_a_traceback(tmp_path):
    """e_machine is a 16-bit field at offset 18; a value no table knows must still be read."""
    built = build_elf(tmp_path / "odd.cpython-311-x86_64-linux-gnu.so", "odd")
    data = bytearray(built.read_bytes())
    data[18:20] = (0x7FF1).to_bytes(2, "little")
    built.write_bytes(bytes(data))
    code, out, err = run_cli("ext", "--json", str(built))
    assert "Traceback" not in err
    (ext,) = json.loads(out)["extensions"]
    assert ext["machine"] == f"machine-{0x7FF1}"
    assert ext["exported"] == ["odd"]
    assert any(f["code"] == "NS203" for f in json.loads(out)["findings"])  # the tag says x86_64
