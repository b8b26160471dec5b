"""Read what matters about a compiled extension from its headers: format, machine, word size,
byte order, the module init functions it exports, and the libraries it needs.

Each reader touches only headers and the tables it needs (ELF: the dynamic segment and the
dynamic symbol table; PE: the export and import directories; Mach-O: load commands and the
export trie), so the cost does not grow with the size of the code and data in the file. Every
offset and count is checked against the file before it is used, and every loop has a bound: a
truncated, garbage or hostile file raises :class:`MalformedBinary` with a one-line reason.

Public API: :func:`read_binary`, :class:`Binary`, :class:`BinaryImage`,
:class:`MalformedBinary`, :func:`init_symbol_names`, :func:`module_from_init_symbol`,
:data:`INIT_PREFIXES`.
"""

from __future__ import annotations

from ..slotted import FrozenSlotted, set_field
from ._reader import MalformedBinary, Reader

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = [
    "INIT_PREFIXES",
    "Binary",
    "BinaryImage",
    "MalformedBinary",
    "Reader",
    "init_symbol_names",
    "module_from_init_symbol",
    "read_binary",
]

# The exported functions an interpreter looks up to import an extension ``name``:
# ``PyInit_name`` (PEP 489), ``PyInitU_<punycode>`` when ``name`` is not ASCII, and PEP 793's
# ``PyModExport_name`` / ``PyModExportU_<punycode>``. Readers keep only symbols with these
# prefixes, so a library exporting a million C++ symbols costs no memory.
INIT_PREFIXES = ("PyInit_", "PyInitU_", "PyModExport_", "PyModExportU_")

# More init functions than this in one image is not a Python extension anyone built on purpose;
# the rest are not kept.
MAX_INIT_SYMBOLS = 256


class BinaryImage(FrozenSlotted):
    """One architecture's image: the whole file, or one slice of a universal Mach-O."""

    __slots__ = ("machine", "word_size", "byte_order", "init_symbols", "needed", "soname", "abi")

    machine: str  # in the platform's own words: x86_64, aarch64 (ELF); amd64, x86 (PE); arm64 (Mach-O)
    word_size: int  # 32 or 64
    byte_order: str  # "little" or "big"
    init_symbols: tuple[str, ...]  # exported symbols with an INIT_PREFIXES prefix
    needed: tuple[str, ...]  # DT_NEEDED, imported DLLs, LC_LOAD_DYLIB
    soname: str | None  # DT_SONAME, or a Mach-O's LC_ID_DYLIB
    abi: str | None  # ELF only: "x32", "eabihf" or "eabi" where the header says so

    def __init__(self, machine: str, word_size: int, byte_order: str, init_symbols: tuple[str, ...],
                 needed: tuple[str, ...] = (), soname: str | None = None, abi: str | None = None) -> None:
        set_field(self, "machine", machine)
        set_field(self, "word_size", word_size)
        set_field(self, "byte_order", byte_order)
        set_field(self, "init_symbols", init_symbols)
        set_field(self, "needed", needed)
        set_field(self, "soname", soname)
        set_field(self, "abi", abi)

    @property
    def exported_modules(self) -> tuple[str, ...]:
        names = (module_from_init_symbol(symbol) for symbol in self.init_symbols)
        return tuple(dict.fromkeys(name for name in names if name))


class Binary(FrozenSlotted):
    """A whole file: its format and its images (one, or a universal Mach-O's slices)."""

    __slots__ = ("format", "images")

    format: str  # "elf", "pe" or "macho"
    images: tuple[BinaryImage, ...]

    def __init__(self, format: str, images: tuple[BinaryImage, ...]) -> None:  # noqa: A002 (the field's name)
        set_field(self, "format", format)
        set_field(self, "images", images)

    @property
    def machine(self) -> str:
        return ",".join(image.machine for image in self.images)

    @property
    def init_symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(symbol for image in self.images for symbol in image.init_symbols))

    @property
    def exported_modules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for image in self.images for name in image.exported_modules))


def read_binary(stream: BinaryIO | Reader, wanted: tuple[str, ...] = ()) -> Binary:
    """Identify ``stream`` (a seekable binary file, or a :class:`Reader` of one) by its magic
    number and read it.

    ``wanted``: the init functions the file's name promises (:func:`init_symbol_names`). The
    result is the same with or without them; an ELF reader uses them to look those up through
    the hash table instead of decoding every dynamic symbol.
    """
    reader = stream if isinstance(stream, Reader) else Reader(stream)
    magic = reader.read(0, min(4, reader.size), "magic number")
    if magic == b"\x7fELF":
        from . import elf

        return elf.read(reader, wanted)
    if magic[:2] == b"MZ":
        from . import pe

        return pe.read(reader)
    from . import macho

    if macho.is_macho(magic):
        return macho.read(reader)
    if reader.size == 0:
        raise MalformedBinary("empty file")
    if len(magic) < 4:
        raise MalformedBinary(f"truncated: only {reader.size} bytes")
    raise MalformedBinary(f"not an ELF, PE or Mach-O file (starts with {magic.hex()})")


def init_symbol_names(module: str) -> tuple[str, ...]:
    """The exported names that make ``module`` (a base name, no dots) importable."""
    if module.isascii():
        return (f"PyInit_{module}", f"PyModExport_{module}")
    encoded = _punycode(module)
    return (f"PyInitU_{encoded}", f"PyModExportU_{encoded}")


def module_from_init_symbol(symbol: str) -> str | None:
    """The module name an init symbol serves, or None when it cannot be decoded."""
    for prefix in INIT_PREFIXES:
        if symbol.startswith(prefix):
            rest = symbol[len(prefix) :]
            if not rest:
                return None
            if prefix.endswith("U_"):
                return _unpunycode(rest)
            return rest
    return None


def _punycode(name: str) -> str:
    # CPython's import.c: the punycode of the name, with '-' (not valid in a C name) as '_'.
    return name.encode("punycode").decode("ascii").replace("-", "_")


def _unpunycode(encoded: str) -> str | None:
    # Punycode's delimiter is the last '-', now the last '_'; the ASCII part before it may hold
    # other '_' of the original name, the encoded part after it never does.
    head, sep, tail = encoded.rpartition("_")
    text = f"{head}-{tail}" if sep else tail
    try:
        name = text.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return None
    return name if _punycode(name) == encoded else None
