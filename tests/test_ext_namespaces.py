"""NS202: an extension module that takes over a namespace package (seed 000: Nuitka compiled
``shared_ns`` into ``shared_ns.cpython-39-darwin.so`` in two distributions sharing the
namespace ``shared_ns``)."""

from __future__ import annotations

import json
from wheelbuild import craft_wheel
from pathlib import Path

from ext_toolchain import build_elf, import_in_subprocess, run_cli

from ns_strip.extensions import ExtensionInfo, inspect_extension_file, namespace_takeovers

EXT = "shared_ns.cpython-311-x86_64-linux-gnu.so"
NS202 = "extension module shared_ns takes over namespace package shared_ns: its portions become unimportable"


def distribution(site: Path, name: str, portion: str) -> None:
    """A site dir holding one distribution that ships a shared_ns portion and the extension."""
    (site / "shared_ns" / portion).mkdir(parents=True)
    (site / "shared_ns" / portion / "__init__.py").write_text(f"NAME = {portion!r}\n")
    build_elf(site / EXT, "shared_ns")
    info = site / f"{name}-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n")
    rows = [f"shared_ns/{portion}/__init__.py,,", f"{EXT},,", f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def test_seed_000_each_distribution_reports_ns202(tmp_path):
    for name, portion in (("pkg1", "thing1"), ("pkg2", "thing2")):
        site = tmp_path / name
        distribution(site, name, portion)
        code, out, _ = run_cli("ext", "--json", str(site))
        assert code == 1
        assert json.loads(out)["findings"] == [
            {
                "code": "NS202",
                "severity": "error",
                "path": EXT,
                "message": NS202,
                "distribution": name,
                "distributions": [name],
                "namespace": "shared_ns",
            }
        ]
        # the takeover is real: the portion cannot be imported beside the extension
        result = import_in_subprocess(site, f"shared_ns.{portion}")
        assert result.returncode != 0 and "not a package" in result.stderr


def test_single_file_beside_a_namespace_directory(tmp_path):
    distribution(tmp_path, "pkg1", "thing1")
    code, out, _ = run_cli("ext", str(tmp_path / EXT))
    assert code == 1
    assert out.splitlines()[-1] == f"NS202 {EXT}: {NS202} [pkg1]"


def test_pkgutil_namespace_init_counts_and_regular_package_does_not(tmp_path):
    build_elf(tmp_path / "ns" / "zope.cpython-311-x86_64-linux-gnu.so", "zope")
    (tmp_path / "ns" / "zope").mkdir()
    (tmp_path / "ns" / "zope" / "__init__.py").write_text(
        "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
    )
    (tmp_path / "ns" / "zope" / "interface.py").write_text("")
    build_elf(tmp_path / "regular" / "zope.cpython-311-x86_64-linux-gnu.so", "zope")
    (tmp_path / "regular" / "zope").mkdir()
    (tmp_path / "regular" / "zope" / "__init__.py").write_text("VERSION = 1\n")
    code, out, _ = run_cli("ext", "--json", str(tmp_path / "ns"))
    assert (code, [f["code"] for f in json.loads(out)["findings"]]) == (1, ["NS202"])
    code, out, _ = run_cli("ext", "--json", str(tmp_path / "regular"))
    assert (code, json.loads(out)["findings"]) == (0, [])


def test_empty_directory_is_not_a_namespace(tmp_path):
    build_elf(tmp_path / EXT, "shared_ns")
    (tmp_path / "shared_ns" / "data").mkdir(parents=True)
    (tmp_path / "shared_ns" / "data" / "table.csv").write_text("a,b\n")
    code, out, _ = run_cli("ext", "--json", str(tmp_path))
    assert (code, json.loads(out)["findings"]) == (0, [])


def test_wheel_with_extension_over_namespace(tmp_path):
    ext = build_elf(tmp_path / "build" / EXT, "shared_ns")
    wheel = craft_wheel(tmp_path, [
        (f"pkg1-1.0.0.data/platlib/{EXT}", ext.read_bytes()),
        ("shared_ns/thing1/__init__.py", b""),
    ], name="pkg1", version="1.0.0")
    code, out, _ = run_cli("ext", "--json", str(wheel))
    data = json.loads(out)
    assert code == 1
    # Members of NAME.data/platlib are shown where they install, as for every command on wheels.
    assert [(f["code"], f["path"], f["distributions"]) for f in data["findings"]] == [("NS202", EXT, ["pkg1"])]
    assert data["extensions"][0]["module"] == "shared_ns"
    assert data["extensions"][0]["exported"] == ["shared_ns"]


def test_unsafe_wheel_is_refused_by_ext(tmp_path):
    ext = build_elf(tmp_path / "build" / EXT, "shared_ns")
    wheel = craft_wheel(tmp_path, [(EXT, ext.read_bytes())], name="pkg1", version="1.0.0",
                        spoil_record=lambda rows: [r for r in rows if not r.startswith(EXT)])
    code, _, err = run_cli("ext", str(wheel))
    assert code == 3 and EXT in err


def test_library_api_takes_known_namespaces(tmp_path):
    path = build_elf(tmp_path / "a" / "b.cpython-311-x86_64-linux-gnu.so", "b")
    info: ExtensionInfo = inspect_extension_file(path, "a/b.cpython-311-x86_64-linux-gnu.so", distributions=("d",))
    assert info.module == "a.b"
    [finding] = namespace_takeovers([info], {"a.b", "zope"})
    assert (finding.code, finding.path, finding.distributions) == ("NS202", info.path, ("d",))
    assert namespace_takeovers([info], {"a", "b"}) == []
