"""ELF shared objects: machine, word size, byte order, exported init functions, DT_NEEDED and
DT_SONAME, read from the file header, the program headers, the dynamic segment and the dynamic
symbol table only.

Section headers, ``.symtab`` and section data are never read: a stripped or a 2 GB object
costs the same as a small one. The size of ``.dynsym`` comes from the hash table the dynamic
loader itself uses (DT_HASH's nchain, or a walk of DT_GNU_HASH's last chain).

The init functions an extension's file name promises are looked up through that hash table
first, as the loader looks them up, when the object has enough dynamic symbols for that to pay;
the whole dynamic symbol table is decoded only when the answer would not be provably the same
(see :meth:`_ElfView.init_symbols`).

pyelftools is the reference for what the fields mean: the names of machines, file types and
the dynamic tags read here are its names, so ``e_machine`` reads ``EM_X86_64`` exactly as its
``ELFFile`` would say. The common machines and the dynamic tags come from small tables of
numbers that a test checks against its enums; pyelftools itself (with its construct library,
about 10 ms: 93 ms against 83 ms for ``ns-strip ext`` on one file) is imported only for another
machine or for naming the type of a file that is not a shared object. The fixed-layout
records themselves (the header, program headers, dynamic entries, symbols) are decoded with
:mod:`struct` from bounded, bounds-checked reads: pyelftools' construct decodes a record field
by field, and for a directory of ordinary extensions that was two thirds of the run (about
0.3 ms per file, against microseconds here).

Public API: :func:`read` (used by :func:`ns_strip.binfmt.read_binary`), :func:`arch_and_abi`,
:func:`tag_arch`, :func:`find_exports` (named exports looked up through the hash table).
"""

from __future__ import annotations

import functools
import re
import struct

from . import INIT_PREFIXES, MAX_INIT_SYMBOLS, Binary, BinaryImage
from ._reader import MAX_STRING, MalformedBinary, Reader, decode_name

MAX_SEGMENTS = 1024  # real shared objects have about a dozen program headers
MAX_PROGRAM_HEADER_TABLE = 64 * 1024  # read in one piece up to this size (MAX_SEGMENTS of 56 bytes fit)
MAX_DYNAMIC_ENTRIES = 8192  # real ones have fewer than a hundred
MAX_NEEDED = 1024
MAX_SYMBOLS = 1 << 22  # ten times the dynamic symbols of the largest libraries known
SYMBOL_CHUNK = 4096  # symbols decoded per read
# A dynamic string table up to this size is read whole to look at symbol names (one read instead
# of one per symbol); a larger one is read through the reader's block cache, name by name.
MAX_STRTAB_IN_MEMORY = 1 << 20
# From this many dynamic symbols on, the wanted init names are looked up through the hash table
# first. Below it, decoding them all (in bulk, with struct.iter_unpack) is cheaper than following
# hash chains a read at a time. benchmarks/elf_lookup.py: 26 us against 31 us at 16 symbols, even
# at 32, 40 against 32 at 64, 61 against 35 at 128, 297 against 48 at 1,000.
LOOKUP_FROM_SYMBOLS = 48

PT_LOAD = 1
PT_DYNAMIC = 2
STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 1, 2, 10
STT_NOTYPE, STT_FUNC, STT_GNU_IFUNC = 0, 2, 10
SHN_UNDEF = 0
EF_ARM_ABI_FLOAT_SOFT = 0x200
EF_ARM_ABI_FLOAT_HARD = 0x400
EF_MIPS_ABI2 = 0x20  # the n32 ABI: a 32-bit ELF class on a 64-bit MIPS

_INIT_PREFIX_BYTES = tuple(prefix.encode("ascii") for prefix in INIT_PREFIXES)
_SHORTEST_PREFIX = min(len(prefix) for prefix in _INIT_PREFIX_BYTES)
# Compiled by re's cache when first used: only objects of LOOKUP_FROM_SYMBOLS symbols or more
# are searched with it.
_INIT_PREFIX_PATTERN = b"|".join(re.escape(prefix) for prefix in _INIT_PREFIX_BYTES)


# The dynamic tags this module reads, by their gABI / GNU numbers; every other tag is skipped
# unread. The names are pyelftools' (tests/test_ext_elf_lookup_path.py checks every number
# against its enums): a table of numbers here spares every ``ext`` run the import of pyelftools
# and its construct library (about 10 ms).
_DYNAMIC_TAGS = {0: "DT_NULL", 1: "DT_NEEDED", 4: "DT_HASH", 5: "DT_STRTAB", 6: "DT_SYMTAB", 10: "DT_STRSZ",
                 11: "DT_SYMENT", 14: "DT_SONAME", 0x6FFFFEF5: "DT_GNU_HASH"}  # fmt: skip

# The machines nearly every extension is built for, with pyelftools' names for them (checked
# against its ENUM_E_MACHINE by tests/test_ext_elf_lookup_path.py); any other number is named by
# pyelftools itself, imported then.
_COMMON_MACHINES = {3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC", 21: "EM_PPC64", 22: "EM_S390", 40: "EM_ARM",
                    62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV", 258: "EM_LOONGARCH"}  # fmt: skip

# Record layouts after the 16 identification bytes, by word size. Field order as in the gABI:
# header: e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
#   e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
# program header: decoded as (p_type, p_offset, p_vaddr, p_filesz), the fields used, the others
#   skipped as padding: 32-bit p_type, p_offset, p_vaddr, [p_paddr], p_filesz, [p_memsz, p_flags,
#   p_align]; 64-bit p_type, [p_flags], p_offset, p_vaddr, [p_paddr], p_filesz, [p_memsz, p_align];
# dynamic entry: d_tag (signed), d_val.
_HEADER = {32: "HHIIIIIHHHHHH", 64: "HHIQQQIHHHHHH"}
_HEADER_BYTES = 16 + 48  # the identification and the larger (64-bit) header
_PHDR = {32: "III4xI12x", 64: "I4xQQ8xQ16x"}
_DYN = {32: "iI", 64: "qQ"}


class _Names:
    """pyelftools' names for the numbers in the header, decoded as its construct enums decode
    them (the last name given to a number wins; an unknown number stays a number). Built only
    for a machine outside :data:`_COMMON_MACHINES` or a file that is not a shared object."""

    def __init__(self) -> None:
        # Imported here: pyelftools pulls in its construct library (a few dozen milliseconds at
        # start-up), which only an unusual ELF file needs.
        from elftools.elf.enums import ENUM_E_MACHINE, ENUM_E_TYPE

        self.e_type = _decoding(ENUM_E_TYPE)
        self.e_machine = _decoding(ENUM_E_MACHINE)


def _decoding(enum: dict) -> dict[int, str]:
    return {value: name for name, value in enum.items() if name != "_default_"}


@functools.lru_cache(maxsize=1)
def _names() -> _Names:
    return _Names()


def _machine_name(e_machine: int) -> str | int:
    name = _COMMON_MACHINES.get(e_machine)
    return name if name is not None else _names().e_machine.get(e_machine, e_machine)


@functools.lru_cache(maxsize=4)
def _symbol_layout(endian: str, word_size: int) -> struct.Struct:
    """A dynamic symbol decoded as (st_name, st_info, st_shndx), the other fields skipped:
    32-bit st_name, [st_value, st_size], st_info, [st_other], st_shndx; 64-bit st_name,
    st_info, [st_other], st_shndx, [st_value, st_size]."""
    return struct.Struct(endian + ("I8xBxH" if word_size == 32 else "IBxH16x"))


@functools.lru_cache(maxsize=8)
def _layouts(endian: str, word_size: int) -> tuple[struct.Struct, struct.Struct, struct.Struct]:
    return (
        struct.Struct(endian + _HEADER[word_size]),
        struct.Struct(endian + _PHDR[word_size]),
        struct.Struct(endian + _DYN[word_size]),
    )


def read(reader: Reader, wanted: tuple[str, ...] = ()) -> Binary:
    """The shared object's image. ``wanted``: the init functions its file name promises; when
    the hash table finds them and they are the only init functions it could export, the other
    dynamic symbols are not decoded (see :meth:`_ElfView.init_symbols`)."""
    # The identification and the header of either class (16 + 36 or 48 bytes) in one read when
    # the file holds 64 bytes; a shorter one is read part by part, each read naming its part.
    head = reader.read(0, _HEADER_BYTES, "ELF header") if reader.size >= _HEADER_BYTES else None
    ident = head if head is not None else reader.read(0, 16, "ELF identification")
    word_size = {1: 32, 2: 64}.get(ident[4])
    little_endian = {1: True, 2: False}.get(ident[5])
    if word_size is None:
        raise MalformedBinary(f"invalid ELF class {ident[4]}")
    if little_endian is None:
        raise MalformedBinary(f"invalid ELF byte order {ident[5]}")
    endian = "<" if little_endian else ">"
    header_layout, phdr_layout, dyn_layout = _layouts(endian, word_size)
    data = head if head is not None else reader.read(0, 16 + header_layout.size, "ELF header")
    (e_type, e_machine, _version, _entry, e_phoff, e_shoff, e_flags, _ehsize, e_phentsize, e_phnum,
     e_shentsize, e_shnum, _shstrndx) = header_layout.unpack_from(data, 16)  # fmt: skip
    if e_type != 3:  # ET_DYN
        kind = {"ET_REL": "a relocatable object (.o)", "ET_EXEC": "an executable", "ET_CORE": "a core dump"}
        type_name = _names().e_type.get(e_type, e_type)
        raise MalformedBinary(f"ELF file is {kind.get(type_name, f'of type {type_name}')}, not a shared object")
    _check_section_headers(reader, e_shoff, e_shnum, e_shentsize)
    machine = _machine_name(e_machine)
    byte_order = "little" if little_endian else "big"
    view = _ElfView(reader, phdr_layout, dyn_layout, e_phoff, e_phentsize, e_phnum, word_size, endian)
    arch, abi = arch_and_abi(machine, word_size, little_endian, e_flags)
    image = BinaryImage(
        machine=arch,
        word_size=word_size,
        byte_order=byte_order,
        init_symbols=view.init_symbols(wanted),
        needed=view.needed,
        soname=view.soname,
        abi=abi,
    )
    return Binary("elf", (image,))


def _check_section_headers(reader: Reader, shoff: int, shnum: int, shentsize: int) -> None:
    # Section headers are not read, but linkers put them last: a table that does not fit is
    # the surest sign of a truncated file (one cut anywhere after the dynamic segment).
    if shoff == 0:
        return
    count = shnum or 1  # 0: the real count is in section 0, which must then exist
    if shoff + count * shentsize > reader.size:
        reader.check(shoff, count * shentsize, f"section header table ({shnum} entries)")  # raises


class _ElfView:
    """The parts of one ELF file reachable from its dynamic segment."""

    def __init__(
        self,
        reader: Reader,
        phdr: struct.Struct,
        dyn: struct.Struct,
        phoff: int,
        phentsize: int,
        phnum: int,
        word_size: int,
        endian: str,
    ) -> None:
        self._reader = reader
        self._word_size = word_size
        self._endian = endian
        self._loads: list[tuple[int, int, int]] = []  # (vaddr, filesz, offset)
        dynamic = self._read_program_headers(phdr, phoff, phentsize, phnum)
        tags = self._read_dynamic(_DYNAMIC_TAGS, dyn, *dynamic)
        self._strtab = self._address_to_offset(_required(tags, "DT_STRTAB"), "dynamic string table")
        strsz = tags.get("DT_STRSZ", [reader.size - self._strtab])[0]
        reader.check(self._strtab, strsz, "dynamic string table")
        self._strtab_end = self._strtab + strsz
        self.needed = tuple(self._string(value, "DT_NEEDED name") for value in tags.get("DT_NEEDED", []))
        self.soname = self._string(tags["DT_SONAME"][0], "DT_SONAME") if "DT_SONAME" in tags else None
        self._tags = tags

    def _read_program_headers(self, phdr: struct.Struct, phoff: int, phentsize: int, count: int) -> tuple[int, int]:
        if count == 0xFFFF:  # PN_XNUM: the real count is in section 0, which a shared object never needs
            raise MalformedBinary("ELF header claims 65535 or more program headers")
        if count > MAX_SEGMENTS:
            raise MalformedBinary(f"ELF header claims {count} program headers (at most {MAX_SEGMENTS} are read)")
        if count and phentsize < phdr.size:
            raise MalformedBinary(f"program header size {phentsize} is too small")
        size = count * phentsize
        if phoff + size > self._reader.size:
            self._reader.check(phoff, size, f"program header table ({count} entries)")  # raises
        # The table fits the file (checked above). An ordinary one (a dozen entries of 56 bytes)
        # is read at once and decoded in bulk; one with padded entries could be tens of megabytes
        # of which only the first bytes of each entry are used, so that is read entry by entry.
        if size <= MAX_PROGRAM_HEADER_TABLE:
            table = self._reader.read(phoff, size, "program header table")
            entries = phdr.iter_unpack(table) if phentsize == phdr.size else (
                phdr.unpack_from(table, index * phentsize) for index in range(count))
        else:
            entries = (phdr.unpack(self._reader.read(phoff + index * phentsize, phdr.size, "program header"))
                       for index in range(count))  # fmt: skip
        loads = self._loads
        dynamic = None
        for p_type, p_offset, p_vaddr, p_filesz in entries:
            if p_type == PT_LOAD:
                loads.append((p_vaddr, p_filesz, p_offset))
            elif p_type == PT_DYNAMIC and dynamic is None:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            raise MalformedBinary("ELF file has no dynamic segment: nothing can be imported from it")
        return dynamic

    def _read_dynamic(self, names: dict[int, str], dyn: struct.Struct, offset: int, size: int) -> dict[str, list[int]]:
        count = min(size // dyn.size, MAX_DYNAMIC_ENTRIES + 1)
        if offset + count * dyn.size > self._reader.size:
            self._reader.check(offset, count * dyn.size, f"dynamic segment ({count} entries)")  # raises
        # At most MAX_DYNAMIC_ENTRIES + 1 entries (131 KB): read at once, decoded in bulk.
        raw = self._reader.read(offset, count * dyn.size, "dynamic segment")
        # At most MAX_DYNAMIC_ENTRIES entries and their DT_NULL: without a DT_NULL among them
        # the segment is refused. Entries are decoded and filtered in bulk (comprehensions and
        # list.index run at C speed; the few kept entries are then grouped by tag).
        entries = list(dyn.iter_unpack(raw))
        try:
            end = [tag for tag, _ in entries].index(0)  # DT_NULL
        except ValueError:
            raise MalformedBinary("dynamic segment is not terminated by DT_NULL") from None
        tags: dict[str, list[int]] = {}
        for tag, value in [entry for entry in entries[:end] if entry[0] in names]:
            values = tags.setdefault(names[tag], [])
            if len(values) < MAX_NEEDED:
                values.append(value)
        return tags

    def _address_to_offset(self, address: int, what: str) -> int:
        for vaddr, filesz, offset in self._loads:
            if vaddr <= address < vaddr + filesz:
                return offset + (address - vaddr)
        raise MalformedBinary(f"{what} address {address:#x} is not in any loaded segment")

    def _string(self, index: int, what: str) -> str:
        return decode_name(self._reader.cstring(self._strtab + index, what, self._strtab_end))

    def init_symbols(self, wanted: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The exported symbols with an init prefix, in symbol table order.

        The table is checked whole first (its size from the hash table, fitting in the file).
        Then, when ``wanted`` names are given, they are looked up through the hash table as the
        loader does: if at least one is exported and the string table holds the init prefixes
        nowhere but in their names, no other symbol can be an init function and the answer is
        complete without decoding the others. Otherwise (a wanted name missing, the NS201 and
        NS210 cases; no hash table; a huge string table; fewer than :data:`LOOKUP_FROM_SYMBOLS`
        symbols, which decode faster than a lookup) every dynamic symbol is decoded.
        """
        symtab = self._address_to_offset(_required(self._tags, "DT_SYMTAB"), "dynamic symbol table")
        entry_size = 16 if self._word_size == 32 else 24
        syment = self._tags.get("DT_SYMENT", [entry_size])[0]
        if syment != entry_size:
            raise MalformedBinary(f"DT_SYMENT is {syment}, not {entry_size}")
        count = self._symbol_count(symtab, entry_size)
        if count > MAX_SYMBOLS:
            raise MalformedBinary(f"dynamic symbol table claims {count} symbols (at most {MAX_SYMBOLS} are read)")
        if symtab + count * entry_size > self._reader.size:
            self._reader.check(symtab, count * entry_size, f"dynamic symbol table ({count} entries)")  # raises
        strtab_size = self._strtab_end - self._strtab
        strings = None
        if count and strtab_size <= MAX_STRTAB_IN_MEMORY:
            strings = self._reader.read(self._strtab, strtab_size, "dynamic string table")
        hashed = "DT_GNU_HASH" in self._tags or "DT_HASH" in self._tags
        if wanted and count >= LOOKUP_FROM_SYMBOLS and strings is not None and hashed:
            found = self._looked_up(wanted, symtab, count, strings)
            if found is not None:
                return found
        layout = _symbol_layout(self._endian, self._word_size)
        found: list[str] = []
        for start in range(0, count, SYMBOL_CHUNK):
            chunk = self._reader.read(
                symtab + start * entry_size, min(SYMBOL_CHUNK, count - start) * entry_size, "dynamic symbol table"
            )
            for name, info, shndx in layout.iter_unpack(chunk):
                if shndx == SHN_UNDEF or info >> 4 not in (STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE):
                    continue
                if info & 0xF not in (STT_FUNC, STT_NOTYPE, STT_GNU_IFUNC):
                    continue
                if strings.startswith(_INIT_PREFIX_BYTES, name) if strings is not None else self._is_init_symbol(name):
                    found.append(self._symbol_name(name, strings))
                    if len(found) >= MAX_INIT_SYMBOLS:
                        return tuple(found)
        return tuple(found)

    def _symbol_name(self, name: int, strings: bytes | None) -> str:
        # From the string table in memory when it holds the whole name (at most MAX_STRING
        # bytes, terminated); otherwise through the reader, which says what is wrong with it.
        if strings is not None:
            end = strings.find(b"\0", name, name + MAX_STRING + 1)
            if end >= 0:
                return decode_name(strings[name:end])
        return self._string(name, "symbol name")

    def _looked_up(self, wanted: tuple[str, ...], symtab: int, count: int, strings: bytes) -> tuple[str, ...] | None:
        """What decoding every symbol would find, from the ``wanted`` names' hash chains alone;
        None when that cannot be known so (then every symbol is decoded)."""
        # Where an init prefix starts in the string table: every init symbol's name is at one of
        # these offsets. More of them than wanted names: other init functions may exist.
        starts = set()
        for match in re.finditer(_INIT_PREFIX_PATTERN, strings):
            starts.add(match.start())
            if len(starts) > len(wanted):
                return None
        if not starts:
            return ()  # no name in the table starts with an init prefix: no init function (NS210)
        defined: dict[int, str] = {}  # symbol index -> name
        names_at = set()
        try:
            for name in dict.fromkeys(wanted):
                wanted_bytes = name.encode("utf-8")
                terminated = wanted_bytes + b"\0"
                candidates = _gnu_candidates(self, wanted_bytes) if "DT_GNU_HASH" in self._tags else (
                    _sysv_candidates(self, wanted_bytes))
                for index in candidates:
                    if index >= count:
                        return None  # outside the table decoding would read: let it decide
                    offset = _defined_name_offset(self, symtab, index)
                    if offset is not None and strings.startswith(terminated, offset):
                        defined[index] = name
                        names_at.add(offset)
        except MalformedBinary:
            # A hash table the lookup cannot follow: decoding every symbol (which needs only its
            # size) decides, so a broken hash chain changes no finding.
            return None
        if not defined or not starts <= names_at:
            return None
        # Another symbol may point at a found name's bytes (a damaged or hand-made table): then
        # only decoding every symbol can say which of them count. A symbol's name field is the
        # first four bytes of its entry, so every entry whose field holds a found name's offset
        # must be one the lookup found; a match elsewhere (even a coincidence) means decoding.
        entry_size = 16 if self._word_size == 32 else 24
        table = self._reader.read(symtab, count * entry_size, "dynamic symbol table")
        for offset in names_at:
            field = struct.pack(self._endian + "I", offset)
            at = table.find(field)
            while at >= 0:
                if at % entry_size == 0 and at // entry_size not in defined:
                    return None
                at = table.find(field, at + 1)
        return tuple(defined[index] for index in sorted(defined))[:MAX_INIT_SYMBOLS]

    def _is_init_symbol(self, name: int) -> bool:
        # Look at a few bytes before reading a whole name: most symbols are not init functions.
        offset = self._strtab + name
        if offset + _SHORTEST_PREFIX > self._strtab_end:
            return False
        head = self._reader.read(offset, min(len("PyModExportU_"), self._strtab_end - offset), "symbol name")
        return head.startswith(_INIT_PREFIX_BYTES)

    def _symbol_count(self, symtab: int, entry_size: int) -> int:
        if "DT_HASH" in self._tags:
            hash_table = self._address_to_offset(self._tags["DT_HASH"][0], "DT_HASH table")
            return self._reader.unpack(self._endian + "II", hash_table, "DT_HASH header")[1]
        if "DT_GNU_HASH" in self._tags:
            return self._gnu_hash_symbol_count(self._address_to_offset(self._tags["DT_GNU_HASH"][0], "DT_GNU_HASH"))
        # No hash table: the string table conventionally follows the symbol table.
        if self._strtab > symtab:
            return (self._strtab - symtab) // entry_size
        raise MalformedBinary("cannot tell the size of the dynamic symbol table (no DT_HASH or DT_GNU_HASH)")

    def _gnu_hash_symbol_count(self, table: int) -> int:
        # The highest symbol index any bucket starts at, then along that chain to the entry
        # whose low bit ends it: that is the last hashed symbol.
        nbuckets, symoffset, bloom_size, _ = self._reader.unpack(self._endian + "IIII", table, "DT_GNU_HASH header")
        if nbuckets > MAX_SYMBOLS or bloom_size > MAX_SYMBOLS:
            raise MalformedBinary(f"DT_GNU_HASH claims {nbuckets} buckets and {bloom_size} bloom words")
        buckets_at = table + 16 + bloom_size * (self._word_size // 8)
        raw = self._reader.read(buckets_at, nbuckets * 4, f"DT_GNU_HASH buckets ({nbuckets})")
        highest = max(struct.unpack(f"{self._endian}{nbuckets}I", raw), default=0)
        if highest == 0:
            return symoffset
        if highest < symoffset:
            raise MalformedBinary(f"DT_GNU_HASH bucket points at symbol {highest}, below its first ({symoffset})")
        chain_at = buckets_at + nbuckets * 4
        index = highest
        while index < MAX_SYMBOLS:
            (value,) = self._reader.unpack(
                self._endian + "I", chain_at + (index - symoffset) * 4, "DT_GNU_HASH chain"
            )
            index += 1
            if value & 1:
                return index
        raise MalformedBinary("DT_GNU_HASH chain does not end")


def _required(tags: dict[str, list[int]], tag: str) -> int:
    if tag not in tags:
        raise MalformedBinary(f"dynamic segment has no {tag}")
    return tags[tag][0]


_FIXED_ARCH = {
    "EM_386": "i386",
    "EM_SPARCV9": "sparc64",
    "EM_SPARC": "sparc",
    "EM_SPARC32PLUS": "sparc",
    "EM_ALPHA": "alpha",
    "EM_PARISC": "hppa",
    "EM_68K": "m68k",
    "EM_SH": "sh4",
    "EM_IA_64": "ia64",
}


def arch_and_abi(machine: str | int, word_size: int, little_endian: bool, flags: int) -> tuple[str, str | None]:
    """The architecture as the first part of a GNU multiarch triplet names it, and the ABI
    variant where the triplet's last part encodes it (``x32``, ``eabihf``, ``eabi``, ``n32``)."""
    wide = word_size == 64
    if machine == "EM_X86_64":
        return "x86_64", (None if wide else "x32")
    if machine == "EM_AARCH64":
        return ("aarch64" if little_endian else "aarch64_be"), None
    if machine == "EM_ARM":
        abi = "eabihf" if flags & EF_ARM_ABI_FLOAT_HARD else "eabi" if flags & EF_ARM_ABI_FLOAT_SOFT else None
        return ("arm" if little_endian else "armeb"), abi
    if machine == "EM_PPC64":
        return ("powerpc64le" if little_endian else "powerpc64"), None
    if machine == "EM_PPC":
        return "powerpc", None
    if machine == "EM_S390":
        return ("s390x" if wide else "s390"), None
    if machine == "EM_RISCV":
        return ("riscv64" if wide else "riscv32"), None
    if machine == "EM_LOONGARCH":
        return ("loongarch64" if wide else "loongarch32"), None
    if machine == "EM_MIPS":
        n32 = not wide and bool(flags & EF_MIPS_ABI2)
        base = "mips64" if wide or n32 else "mips"
        return base + ("el" if little_endian else ""), ("n32" if n32 else None)
    if isinstance(machine, str):
        return _FIXED_ARCH.get(machine, machine.lower().replace("em_", "", 1)), None
    return f"machine-{machine}", None


KNOWN_ARCHES = frozenset(
    {
        "x86_64", "i386", "aarch64", "aarch64_be", "arm", "armeb", "powerpc64le", "powerpc64", "powerpc",
        "s390x", "s390", "riscv64", "riscv32", "loongarch64", "loongarch32", "mips", "mipsel", "mips64",
        "mips64el", *_FIXED_ARCH.values(),
    }
)  # fmt: skip

_TAG_ARCH_ALIASES = {
    "i486": "i386", "i586": "i386", "i686": "i386", "x86": "i386", "amd64": "x86_64", "arm64": "aarch64",
    "armv5tel": "arm", "armv6l": "arm", "armv7l": "arm", "armv7": "arm", "armv7a": "arm", "armhf": "arm",
    "armel": "arm", "ppc64le": "powerpc64le", "ppc64": "powerpc64", "ppc": "powerpc", "mipsisa64r6el": "mips64el",
}  # fmt: skip


@functools.lru_cache(maxsize=64)
def tag_arch(triplet: str) -> tuple[str | None, str | None]:
    """The architecture a triplet (``arm-linux-gnueabihf``) names, in :func:`arch_and_abi`'s
    words, or None when unknown; and the ABI variant its last part names."""
    arch, _, system = triplet.partition("-")
    arch = _TAG_ARCH_ALIASES.get(arch, arch)
    abi = next((abi for abi in ("x32", "eabihf", "eabi", "abin32") if system.endswith(abi)), None)
    return (arch if arch in KNOWN_ARCHES else None), ("n32" if abi == "abin32" else abi)


# -- looking exports up by name --------------------------------------------------------------
#
# :func:`find_exports` answers "does this object export PyInit_foo?" the way the dynamic loader
# does: through the hash table (DT_GNU_HASH, else DT_HASH), touching one bucket and one chain
# instead of decoding every dynamic symbol. It parses the headers as :func:`read` does (kept
# apart from it on purpose: an addition beside the reader, not a change to it).

MAX_CHAIN = 1 << 16  # the loader's chains are a few entries long; a longer one is not followed


def find_exports(reader: Reader, names: tuple[str, ...]) -> tuple[str, ...]:
    """Which of ``names`` the ELF shared object read by ``reader`` exports (defined, global or
    weak, function or untyped), looked up through its hash table; MalformedBinary as ``read``."""
    ident = reader.read(0, 16, "ELF identification")
    word_size = {1: 32, 2: 64}.get(ident[4])
    little_endian = {1: True, 2: False}.get(ident[5])
    if word_size is None or little_endian is None:
        raise MalformedBinary(f"invalid ELF class {ident[4]} or byte order {ident[5]}")
    endian = "<" if little_endian else ">"
    header_layout, phdr_layout, dyn_layout = _layouts(endian, word_size)
    data = reader.read(0, 16 + header_layout.size, "ELF header")
    fields = header_layout.unpack_from(data, 16)
    if fields[0] != 3:  # ET_DYN
        raise MalformedBinary("ELF file is not a shared object")
    view = _LookupView(reader, phdr_layout, dyn_layout, fields[4], fields[8], fields[9], word_size, endian)
    return tuple(name for name in names if _exports(view, name))


class _LookupView(_ElfView):
    """The parts of :class:`_ElfView` a lookup uses: loaded segments, the dynamic tags and the
    string table's bounds (no DT_NEEDED or DT_SONAME names are decoded)."""

    def __init__(self, reader: Reader, phdr: struct.Struct, dyn: struct.Struct, phoff: int, phentsize: int,
                 phnum: int, word_size: int, endian: str) -> None:
        self._reader = reader
        self._word_size = word_size
        self._endian = endian
        self._loads = []
        dynamic = self._read_program_headers(phdr, phoff, phentsize, phnum)
        self._tags = self._read_dynamic(_DYNAMIC_TAGS, dyn, *dynamic)
        self._strtab = self._address_to_offset(_required(self._tags, "DT_STRTAB"), "dynamic string table")
        strsz = self._tags.get("DT_STRSZ", [reader.size - self._strtab])[0]
        reader.check(self._strtab, strsz, "dynamic string table")
        self._strtab_end = self._strtab + strsz


def gnu_hash(name: bytes) -> int:
    value = 5381
    for byte in name:
        value = (value * 33 + byte) & 0xFFFFFFFF
    return value


def sysv_hash(name: bytes) -> int:
    value = 0
    for byte in name:
        value = (value << 4) + byte
        high = value & 0xF0000000
        if high:
            value ^= high >> 24
        value &= ~high & 0xFFFFFFFF
    return value


def _exports(view: _LookupView, name: str) -> bool:
    wanted = name.encode("utf-8")
    if "DT_GNU_HASH" in view._tags:
        candidates = _gnu_candidates(view, wanted)
    elif "DT_HASH" in view._tags:
        candidates = _sysv_candidates(view, wanted)
    else:
        raise MalformedBinary("no DT_GNU_HASH or DT_HASH table: the loader could not look symbols up")
    return any(_defines(view, index, wanted) for index in candidates)


def _gnu_candidates(view: _ElfView, wanted: bytes) -> list[int]:
    table = view._address_to_offset(view._tags["DT_GNU_HASH"][0], "DT_GNU_HASH")
    nbuckets, symoffset, bloom_size, shift = view._reader.unpack(view._endian + "IIII", table, "DT_GNU_HASH header")
    if nbuckets == 0 or nbuckets > MAX_SYMBOLS or bloom_size > MAX_SYMBOLS:
        raise MalformedBinary(f"DT_GNU_HASH claims {nbuckets} buckets and {bloom_size} bloom words")
    h1 = gnu_hash(wanted)
    bits = view._word_size
    if bloom_size:
        word_format = view._endian + ("I" if bits == 32 else "Q")
        (word,) = view._reader.unpack(word_format, table + 16 + ((h1 // bits) % bloom_size) * (bits // 8),
                                      "DT_GNU_HASH bloom filter")
        mask = (1 << (h1 % bits)) | (1 << ((h1 >> (shift % 32)) % bits))
        if word & mask != mask:
            return []
    buckets_at = table + 16 + bloom_size * (bits // 8)
    (index,) = view._reader.unpack(view._endian + "I", buckets_at + (h1 % nbuckets) * 4, "DT_GNU_HASH bucket")
    if index == 0:
        return []
    if index < symoffset:
        raise MalformedBinary(f"DT_GNU_HASH bucket points at symbol {index}, below its first ({symoffset})")
    chain_at = buckets_at + nbuckets * 4
    found = []
    for _ in range(MAX_CHAIN):
        (h2,) = view._reader.unpack(view._endian + "I", chain_at + (index - symoffset) * 4, "DT_GNU_HASH chain")
        if (h1 | 1) == (h2 | 1):
            found.append(index)
        if h2 & 1:
            return found
        index += 1
    raise MalformedBinary("DT_GNU_HASH chain does not end")


def _sysv_candidates(view: _ElfView, wanted: bytes) -> list[int]:
    table = view._address_to_offset(view._tags["DT_HASH"][0], "DT_HASH table")
    nbucket, nchain = view._reader.unpack(view._endian + "II", table, "DT_HASH header")
    if nbucket == 0 or nbucket > MAX_SYMBOLS or nchain > MAX_SYMBOLS:
        raise MalformedBinary(f"DT_HASH claims {nbucket} buckets and {nchain} chain entries")
    (index,) = view._reader.unpack(view._endian + "I", table + 8 + (sysv_hash(wanted) % nbucket) * 4, "DT_HASH bucket")
    chain_at = table + 8 + nbucket * 4
    found = []
    for _ in range(min(nchain, MAX_CHAIN) + 1):  # a chain visits each symbol once at most
        if index == 0:  # STN_UNDEF ends the chain
            return found
        if index >= nchain:
            raise MalformedBinary(f"DT_HASH chain points at symbol {index}, past its {nchain}")
        found.append(index)
        (index,) = view._reader.unpack(view._endian + "I", chain_at + index * 4, "DT_HASH chain")
    raise MalformedBinary("DT_HASH chain does not end (a cycle)")


def _defines(view: _LookupView, index: int, wanted: bytes) -> bool:
    """Whether dynamic symbol ``index`` is a defined, exported function named ``wanted``."""
    symtab = view._address_to_offset(_required(view._tags, "DT_SYMTAB"), "dynamic symbol table")
    name = _defined_name_offset(view, symtab, index)
    if name is None:
        return False
    return view._reader.cstring(view._strtab + name, "symbol name", view._strtab_end) == wanted


def _defined_name_offset(view: _ElfView, symtab: int, index: int) -> int | None:
    """The name (an offset into the string table) of dynamic symbol ``index`` if it is a
    defined, exported function (or untyped); None for any other symbol."""
    if view._word_size == 32:
        name, _, _, info, _, shndx = view._reader.unpack(view._endian + "IIIBBH", symtab + index * 16, "symbol")
    else:
        name, info, _, shndx, _, _ = view._reader.unpack(view._endian + "IBBHQQ", symtab + index * 24, "symbol")
    if shndx == SHN_UNDEF or info >> 4 not in (STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE):
        return None
    if info & 0xF not in (STT_FUNC, STT_NOTYPE, STT_GNU_IFUNC):
        return None
    return name
