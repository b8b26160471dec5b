"""``ns-strip ext`` reads an ELF extension's init functions through its hash table when it has
enough dynamic symbols for that to pay (issue 15): the names its file name promises are looked
up as the loader looks them up, and the other symbols are decoded only when those are missing
(NS201, NS210) or other init functions may exist.

The rule these tests hold it to: the answer is exactly the answer of decoding every symbol
(``read(reader, ())``), on real objects of every hash style and on damaged ones (the same
Binary, or MalformedBinary with the same message); and the lookup path is really taken where
it should be (a spy on it, not a timing).
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from ext_toolchain import tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ns_strip.binfmt import MalformedBinary, elf, init_symbol_names
from ns_strip.binfmt._reader import Reader
from ns_strip.extensions import check_extension, inspect_extension

STYLES = {"gnu": "-Wl,--hash-style=gnu", "sysv": "-Wl,--hash-style=sysv", "both": "-Wl,--hash-style=both"}
HELPERS = elf.LOOKUP_FROM_SYMBOLS + 30  # enough exported symbols for the lookup path
WANTED = init_symbol_names("spam")


def _build(out: Path, defined: tuple[str, ...], *, style: str = "gnu", imported: tuple[str, ...] = (),
           helpers: int = HELPERS) -> bytes:
    lines = [f"int helper_{index}(int x) {{ return x + {index}; }}" for index in range(helpers)]
    lines += [f"extern void *{name}(void);" for name in imported]
    calls = " ".join(f"(void){name}();" for name in imported)
    lines += [f"void *{name}(void) {{ {calls} return (void *)0; }}" for name in defined]
    source = out.with_suffix(".c")
    source.write_text("\n".join(lines) + "\n")
    subprocess.run([tool("gcc"), "-shared", "-fPIC", "-O0", STYLES[style], "-Wl,--allow-shlib-undefined",
                    "-o", str(out), str(source)], check=True, capture_output=True)
    return out.read_bytes()


def _read(data: bytes, wanted: tuple[str, ...]) -> object:
    """The Binary, or the MalformedBinary message."""
    try:
        return elf.read(Reader(io.BytesIO(data)), wanted)
    except MalformedBinary as exc:
        return f"MalformedBinary: {exc}"


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What every call of the lookup path answered (None: it handed over to full decoding)."""
    answers: list[object] = []
    original = elf._ElfView._looked_up

    def spy(self, *args):
        answer = original(self, *args)
        answers.append(answer)
        return answer

    monkeypatch.setattr(elf._ElfView, "_looked_up", spy)
    return answers


@pytest.mark.parametrize("style", sorted(STYLES))
def test_the_promised_init_is_found_through_the_hash_table(style: str, tmp_path: Path, lookups) -> None:
    data = _build(tmp_path / "spam.so", ("PyInit_spam",), style=style)
    looked_up = _read(data, WANTED)
    assert lookups == [("PyInit_spam",)]  # the answer came from the lookup, not from decoding
    assert looked_up == _read(data, ())
    assert looked_up.images[0].init_symbols == ("PyInit_spam",)  # the answer came from the lookup, not from decoding


@pytest.mark.parametrize("style", sorted(STYLES))
def test_both_promised_names_in_symbol_table_order(style: str, tmp_path: Path, lookups) -> None:
    data = _build(tmp_path / "spam.so", ("PyModExport_spam", "PyInit_spam"), style=style)
    full = _read(data, ())
    assert set(full.images[0].init_symbols) == {"PyInit_spam", "PyModExport_spam"}
    assert _read(data, WANTED) == full
    assert lookups[0] == full.images[0].init_symbols


@pytest.mark.parametrize(
    ("defined", "imported"),
    [
        (("PyInit_spam", "PyInit_eggs"), ()),  # another init function: the JSON lists both
        (("PyInit_spam",), ("PyInit_other",)),  # an imported init name is in the string table
        (("PyInit_spam", "PyInitU_spm_xxa"), ()),
    ],
)
def test_other_init_names_in_the_string_table_mean_full_decoding(defined, imported, tmp_path: Path,
                                                                 lookups) -> None:
    data = _build(tmp_path / "spam.so", defined, imported=imported)
    full = _read(data, ())
    assert _read(data, WANTED) == full
    assert set(full.images[0].init_symbols) == set(defined)
    assert lookups == [None]  # the lookup handed over: it could not know the answer was complete


def test_missing_init_still_names_what_the_binary_exports(tmp_path: Path, lookups) -> None:
    """NS201 names the init functions the file does export: those need the full decoding."""
    data = _build(tmp_path / "spam.so", ("PyInit_eggs", "PyModExport_ham"))
    info = inspect_extension(io.BytesIO(data), "spam.cpython-311-x86_64-linux-gnu.so")
    [finding] = [f for f in check_extension(info) if f.code == "NS201"]
    exported = finding.details["init_symbols"]
    assert sorted(exported) == ["PyInit_eggs", "PyModExport_ham"]  # in the linker's symbol order
    assert ", ".join(exported) in finding.message and lookups == [None]


def test_no_init_at_all_is_ns210(tmp_path: Path, lookups) -> None:
    data = _build(tmp_path / "spam.so", ())
    info = inspect_extension(io.BytesIO(data), "spam.cpython-311-x86_64-linux-gnu.so")
    assert [f.code for f in check_extension(info)] == ["NS210"]
    assert lookups == [()]  # no init prefix anywhere in the string table: no symbol decoded


def test_a_small_object_is_decoded_whole(tmp_path: Path, lookups) -> None:
    data = _build(tmp_path / "spam.so", ("PyInit_spam",), helpers=2)
    assert _read(data, WANTED).images[0].init_symbols == ("PyInit_spam",)
    assert lookups == []


def test_machine_and_tag_numbers_are_pyelftools_names() -> None:
    """The numbers elf.py names without importing pyelftools are named as pyelftools names them."""
    from elftools.elf.enums import ENUM_D_TAG_COMMON, ENUM_E_MACHINE, ENUM_P_TYPE_BASE

    machines = elf._decoding(ENUM_E_MACHINE)
    # An older pyelftools (Debian 12's 0.29) does not know every machine (EM_LOONGARCH came in
    # 0.30): the ones it knows it must name as elf.py does.
    known = {number: name for number, name in elf._COMMON_MACHINES.items() if number in machines}
    assert {number: machines[number] for number in known} == known
    assert len(known) >= len(elf._COMMON_MACHINES) - 1
    assert {number: ENUM_D_TAG_COMMON[name] for number, name in elf._DYNAMIC_TAGS.items()} == {
        number: number for number in elf._DYNAMIC_TAGS}
    assert (ENUM_P_TYPE_BASE["PT_LOAD"], ENUM_P_TYPE_BASE["PT_DYNAMIC"]) == (elf.PT_LOAD, elf.PT_DYNAMIC)
    other = next(number for number in machines if number not in elf._COMMON_MACHINES)
    assert elf._machine_name(62) == "EM_X86_64" and elf._machine_name(other) == machines[other]
    assert elf._machine_name(0xFFFF) == (machines.get(0xFFFF) or 0xFFFF)


CROSS = {"i686-linux-gnu": ("i386", 32, "little"), "powerpc64-linux-gnu": ("powerpc64", 64, "big"),
         "armv7a-linux-gnueabihf": ("arm", 32, "little")}


@pytest.fixture(scope="module", params=[*sorted(STYLES), "i686-linux-gnu/sysv", "powerpc64-linux-gnu/gnu"])
def seed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp(request.param.replace("/", "-")) / "spam.so"
    if "/" in request.param:
        return _cross_build(out, *request.param.split("/"))
    return _build(out, ("PyInit_spam",), style=request.param)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_objects_get_the_full_decodings_answer(seed: bytes, data: st.DataObject) -> None:
    """Hash tables, symbols and strings damaged (huge counts and offsets among them): the lookup
    path answers what decoding every symbol answers, or the same MalformedBinary."""
    damaged = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        # Mostly in the first pages: headers, .gnu.hash/.hash, .dynsym, .dynstr.
        limit = data.draw(st.sampled_from([4096, 16384, len(seed)]))
        offset = data.draw(st.integers(0, min(limit, len(seed)) - 4))
        if data.draw(st.booleans()):
            damaged[offset] = data.draw(st.integers(0, 255))
        else:
            value = data.draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, len(seed)]))
            damaged[offset:offset + 4] = value.to_bytes(4, "little")
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    assert _read(bytes(damaged), WANTED) == _read(bytes(damaged), ())


def _cross_build(out: Path, target: str, hash_style: str) -> bytes:
    """An object for another machine (clang and ld.lld) exporting PyInit_spam and the helpers."""
    source = out.with_suffix(".c")
    source.write_text("\n".join([f"int helper_{index}(int x) {{ return x + {index}; }}" for index in range(HELPERS)]
                                + ["void *PyInit_spam(void) { return (void *)0; }"]) + "\n")
    obj = out.with_suffix(".o")
    subprocess.run([tool("clang"), "-target", target, "-fPIC", "-c", "-o", str(obj), str(source)],
                   check=True, capture_output=True)
    subprocess.run([tool("ld.lld"), "-shared", f"--hash-style={hash_style}", "-o", str(out), str(obj)],
                   check=True, capture_output=True)
    return out.read_bytes()


@pytest.mark.parametrize("hash_style", ["gnu", "sysv"])
@pytest.mark.parametrize("target", sorted(CROSS))
def test_other_word_sizes_and_byte_orders(target: str, hash_style: str, tmp_path: Path, lookups) -> None:
    """32-bit and big-endian objects (clang and ld.lld) take the lookup path with the same answer."""
    data = _cross_build(tmp_path / "spam.so", target, hash_style)
    looked_up = _read(data, WANTED)
    assert lookups == [("PyInit_spam",)]
    assert looked_up == _read(data, ())
    image = looked_up.images[0]
    assert (image.machine, image.word_size, image.byte_order) == CROSS[target]
    assert image.init_symbols == ("PyInit_spam",)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_second_symbol_pointing_at_the_init_name_is_decoded(tmp_path: Path, style: str) -> None:
    """Another defined symbol whose name field points at ``PyInit_spam``'s bytes (what a fuzzer
    found: one damaged byte of .dynsym): the hash chain of that name does not reach it, so the
    lookup must leave the answer to decoding every symbol, which sees both."""
    from elftools.elf.elffile import ELFFile

    data = bytearray(_build(tmp_path / "spam.so", ("PyInit_spam",), style=style))
    dynsym = ELFFile(io.BytesIO(bytes(data))).get_section_by_name(".dynsym")
    symbols = list(dynsym.iter_symbols())
    init = next(s for s in symbols if s.name == "PyInit_spam")
    other = next(i for i, s in enumerate(symbols)
                 if s.name.startswith("helper_") and s["st_shndx"] != "SHN_UNDEF")
    entry = dynsym["sh_offset"] + other * dynsym["sh_entsize"]
    data[entry:entry + 4] = init["st_name"].to_bytes(4, "little")
    full = _read(bytes(data), ())
    assert full.images[0].init_symbols == ("PyInit_spam", "PyInit_spam")
    assert _read(bytes(data), WANTED) == full
