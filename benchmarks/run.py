"""Benchmarks: ns-strip against what a maintainer would otherwise run, on the same data.

Every number is a ratio taken in the same run: each repetition runs ns-strip and its baseline
back to back (alternating which goes first), each as a subprocess started the same way (through
a small launcher that times it and reads its ``wait4`` usage), and the table shows the medians
of wall time and of CPU time. Peak memory is the command's maximum resident set (a pipeline's
is its largest process). Untimed preparation (a fresh copy of the tree for every strip) happens
before the clock starts.

    python benchmarks/run.py            # distro scale: 1,000 and 5,000 distributions, ...
    python benchmarks/run.py --quick    # a CI smoke size

Data is generated once and cached under benchmarks/data/ (see generate.py).
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate  # noqa: E402  (a sibling script, not an installed module)

HERE = Path(__file__).resolve().parent
NS_STRIP = [sys.executable, "-m", "ns_strip"]
MEMORY_LIMIT_MIB = 200


@dataclasses.dataclass(frozen=True)
class Profile:
    """The sizes one benchmark run works at."""

    sites: tuple[int, ...]  # distribution counts
    extensions: int
    small_extension: int  # bytes
    large_extension: int
    wheel_payload: int
    registry_ops: int  # per process
    registry_processes: int
    repetitions: int


# The registry commits durably per operation, so its runs are counted in operations, not sizes.
FULL = Profile((1000, 5000), 1000, 200 << 10, 200 << 20, 100 << 20, 100, 8, 5)
QUICK = Profile((30,), 20, 200 << 10, 2 << 20, 2 << 20, 10, 2, 2)


class BenchmarkError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Sample:
    seconds: float  # wall clock
    cpu_seconds: float  # user + system: less disturbed than wall time on a shared machine
    max_rss_kib: int


# Runs one command and writes its wall time, CPU time and peak memory to a file. It is a
# small interpreter of its own (-S -I: no site, about 9 MB) because a child's peak resident
# set starts at its parent's size at fork: started straight from this harness, which holds a
# few hundred thousand paths by then, every command would seem to need as much memory as it.
LAUNCHER = """
import os, sys, time
result, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(result, "w") as out:
    out.write(f"{seconds} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(command: Sequence[str], ok: Sequence[int] = (0,), self_timed: bool = False) -> Sample:
    """Run ``command`` once with output discarded; its wall time and peak resident memory.

    A ``self_timed`` command prints the seconds its timed part took on its last line (to leave
    its own start-up out); that is used instead of the wall time around it.
    """
    with tempfile.TemporaryFile() as errors, tempfile.TemporaryFile() as output, \
            tempfile.NamedTemporaryFile("r") as result:
        code = subprocess.call(
            [sys.executable, "-S", "-I", "-c", LAUNCHER, result.name, *command],
            stdin=subprocess.DEVNULL, stdout=output if self_timed else subprocess.DEVNULL, stderr=errors,
        )
        if code not in ok:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
            raise BenchmarkError(f"{shlex.join(command)} exited {code}: "
                                 f"{message[-1] if message else 'no message'}")
        wall, cpu, max_rss_kib = result.read().split()
        seconds = float(wall)
        if self_timed:
            output.seek(0)
            seconds = float(output.read().split()[-1])
    return Sample(seconds, float(cpu), int(max_rss_kib))


def shell(script: str) -> list[str]:
    return ["sh", "-c", script]


@dataclasses.dataclass
class Side:
    """One thing to time. ``prepare`` (untimed, every repetition) returns the command to run and a
    clean-up to call after it."""

    label: str
    prepare: Callable[[], tuple[list[str], Callable[[], None]]]
    ok: tuple[int, ...] = (0,)
    self_timed: bool = False

    @classmethod
    def fixed(cls, label: str, command: list[str], ok: tuple[int, ...] = (0,)) -> Side:
        return cls(label, lambda: (command, lambda: None), ok)

    def run(self) -> Sample:
        command, clean_up = self.prepare()
        try:
            return measure(command, self.ok, self.self_timed)
        finally:
            clean_up()


@dataclasses.dataclass
class Goal:
    text: str
    max_ratio: float | None = None
    min_rate: float | None = None  # operations per second
    memory: bool = False  # whether the memory limit applies to this row


@dataclasses.dataclass
class Row:
    case: str
    ours: Side
    baseline: Side
    goal: Goal
    operations: int | None = None  # for throughput rows: work done per run
    repetitions: int | None = None  # this row's own count (slow rows fewer, noisy ones more)
    warm_up: bool = True  # an untimed first run of each side (not needed when each run copies its data)
    after: Callable[[], None] | None = None  # checks and clean-up once the row is done
    # results
    ours_samples: list[Sample] = dataclasses.field(default_factory=list)
    baseline_samples: list[Sample] = dataclasses.field(default_factory=list)
    unavailable: str | None = None

    @property
    def ours_median(self) -> float:
        return statistics.median(s.seconds for s in self.ours_samples)

    @property
    def baseline_median(self) -> float:
        return statistics.median(s.seconds for s in self.baseline_samples)

    @property
    def cpu_ratio(self) -> float:
        ours = statistics.median(s.cpu_seconds for s in self.ours_samples)
        return ours / max(statistics.median(s.cpu_seconds for s in self.baseline_samples), 1e-6)

    @property
    def peak_mib(self) -> float:
        return max(s.max_rss_kib for s in self.ours_samples) / 1024

    @property
    def ratio(self) -> float:
        return self.ours_median / self.baseline_median

    @property
    def rate(self) -> float | None:
        return self.operations / self.ours_median if self.operations else None

    def verdict(self) -> str:
        if self.unavailable:
            return "not available"
        missed = []
        if self.goal.max_ratio is not None and self.ratio > self.goal.max_ratio:
            missed.append("ratio")
        if self.goal.min_rate is not None and (self.rate or 0) < self.goal.min_rate:
            missed.append("rate")
        if self.goal.memory and self.peak_mib > MEMORY_LIMIT_MIB:
            missed.append("memory")
        if missed:
            return "MISSED " + "+".join(missed)
        if self.goal.max_ratio is None and self.goal.min_rate is None and not self.goal.memory:
            return "info"
        return "met"

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"case": self.case, "goal": self.goal.text, "verdict": self.verdict()}
        if self.unavailable:
            data["unavailable"] = self.unavailable
            return data
        data.update({
            "ns_strip": self.ours.label,
            "baseline": self.baseline.label,
            "ns_strip_seconds": [s.seconds for s in self.ours_samples],
            "baseline_seconds": [s.seconds for s in self.baseline_samples],
            "ns_strip_median": self.ours_median,
            "baseline_median": self.baseline_median,
            "ratio": self.ratio,
            "cpu_ratio": self.cpu_ratio,
            "ns_strip_peak_mib": self.peak_mib,
            "ops_per_second": self.rate,
        })
        return data


def run_rows(rows: list[Row], repetitions: int, log: Callable[[str], None]) -> None:
    """Warm up each side once (untimed), then time them alternately; a side that fails makes
    its row "not available" with the reason, and the others go on."""
    for row in rows:
        log(f"running: {row.case} (vs {row.baseline.label})")
        sides = [row.ours, row.baseline]
        try:
            for side in sides if row.warm_up else ():
                side.run()
            for repetition in range(row.repetitions or repetitions):
                order = sides if repetition % 2 == 0 else sides[::-1]
                for side in order:
                    sample = side.run()
                    (row.ours_samples if side is row.ours else row.baseline_samples).append(sample)
        except BenchmarkError as exc:
            row.unavailable = str(exc)
        finally:
            if row.after is not None:
                row.after()


# -- the cases -----------------------------------------------------------------------------


class Scratch:
    """Fresh copies of cached data for the benchmarks that change what they work on."""

    def __init__(self, data_dir: Path) -> None:
        # Beside the cache, so copies are on the same file system as the originals.
        self.root = Path(tempfile.mkdtemp(prefix="scratch-", dir=data_dir))
        self.trash: list[Path] = []

    def link_tree(self, tree: Path) -> tuple[Path, Callable[[], None]]:
        """A copy made of hard links: stripping renames and unlinks, never writes a file in
        place, and linking 200,000 files is several times faster than copying them. Deleting
        is slow too, so copies are swept after the row, not between timed runs."""
        target = Path(tempfile.mkdtemp(dir=self.root)) / tree.name
        subprocess.run(["cp", "-al", str(tree), str(target)], check=True)
        return target, lambda: self.trash.append(target.parent)

    def sweep(self) -> None:
        for directory in self.trash:
            shutil.rmtree(directory)
        self.trash.clear()

    def copy_file(self, path: Path) -> tuple[Path, Callable[[], None]]:
        directory = Path(tempfile.mkdtemp(dir=self.root))
        shutil.copyfile(path, directory / path.name)
        return directory / path.name, lambda: shutil.rmtree(directory)

    def empty_dir(self) -> tuple[Path, Callable[[], None]]:
        directory = Path(tempfile.mkdtemp(dir=self.root))
        return directory, lambda: shutil.rmtree(directory)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def count_files(tree: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(tree))


def startup_rows() -> list[Row]:
    """What every invocation pays before any work: the interpreter, then ns-strip's imports."""
    return [Row("start-up (ns-strip --version)", Side.fixed("ns-strip --version", [*NS_STRIP, "--version"]),
                Side.fixed("python -c pass", [sys.executable, "-c", "pass"]), Goal("report"))]


FIND_INITS = "find {site} -name __init__.py -print0 | xargs -0 grep -l -e extend_path -e declare_namespace"


def scan_rows(data_dir: Path, count: int, largest: bool) -> list[Row]:
    prefix = generate.site_tree(data_dir, count)
    site = prefix / generate.SITE_DIR
    files = count_files(site)
    name = f"scan {count:,} dists / {files // 1000}k files"
    ours = Side.fixed("ns-strip scan", [*NS_STRIP, "scan", str(site)])
    quoted = shlex.quote(str(site))
    return [
        Row(name, ours, Side.fixed("find -type f", ["find", str(site), "-type", "f"]),
            Goal("<= 1.5x", max_ratio=1.5, memory=largest)),
        Row(name, ours, Side.fixed("find | xargs grep -l", shell(FIND_INITS.format(site=quoted)), ok=(0, 123)),
            Goal("<= 1.0x", max_ratio=1.0, memory=largest)),
    ] + ([
        # What a scan does besides, when asked: every RECORD compared with the files (NS401),
        # every module of the distributions with legacy files read (NS403, NS405).
        Row(f"{name}, --all-records --check-modules",
            Side.fixed("ns-strip scan --all-records --check-modules",
                       [*NS_STRIP, "scan", "--all-records", "--check-modules", str(site)]),
            Side.fixed("find | xargs grep -l", shell(FIND_INITS.format(site=quoted)), ok=(0, 123)),
            Goal("report")),
        # The floor under any scan in Python (scan_floor.py): the same walk and the same files
        # read, with nothing checked or analysed; then with the reads a scan must make (safeio).
        Row(f"{name}, floor: Python walk + reads",
            Side.fixed("scan_floor.py", [sys.executable, str(HERE / "scan_floor.py"), str(site)]),
            Side.fixed("find -type f", ["find", str(site), "-type", "f"]), Goal("report")),
        Row(f"{name}, floor: Python walk + safeio reads",
            Side.fixed("scan_floor.py --safe", [sys.executable, str(HERE / "scan_floor.py"), "--safe", str(site)]),
            Side.fixed("find -type f", ["find", str(site), "-type", "f"]), Goal("report")),
    ] if largest else [])


# What a maintainer writes by hand: every legacy init (hybrids too: grep cannot tell), every
# nspkg.pth, every namespace_packages.txt; RECORDs are left as they were.
HAND_STRIP = (
    FIND_INITS + " | tr '\\n' '\\0' | xargs -0 -r rm -f\n"
    "rm -f {site}/*-nspkg.pth\n"
    "find {site} -path '*.dist-info/namespace_packages.txt' -delete\n"
)


def fingerprint(tree: Path) -> dict[str, tuple[int, int, int]]:
    """Size, modification time and inode of every file: what a write in place would change."""
    result = {}
    for directory, _, files in os.walk(tree):
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            result[os.path.join(directory, name)] = (info.st_size, info.st_mtime_ns, info.st_ino)
    return result


def strip_rows(data_dir: Path, count: int, scratch: Scratch, largest: bool, profile: Profile) -> list[Row]:
    prefix = generate.site_tree(data_dir, count)
    before = fingerprint(prefix)

    def fresh(command: Callable[[Path], list[str]]) -> Callable[[], tuple[list[str], Callable[[], None]]]:
        def prepare() -> tuple[list[str], Callable[[], None]]:
            copy, clean_up = scratch.link_tree(prefix)
            return command(copy / generate.SITE_DIR), clean_up
        return prepare

    def after() -> None:
        scratch.sweep()
        if fingerprint(prefix) != before:
            (prefix / ".complete").unlink()  # the next run makes it again
            raise SystemExit(f"{prefix} changed through a hard-linked copy: something wrote a file in place")

    ours = Side("ns-strip strip", fresh(lambda site: [*NS_STRIP, "strip", str(site)]))
    hand = Side("find+grep+rm", fresh(lambda site: shell(HAND_STRIP.format(site=shlex.quote(str(site))))))
    return [Row(f"strip {count:,} dists (fresh copy each run)", ours, hand,
                Goal("report (RECORDs rewritten, journalled)", memory=largest),
                repetitions=min(3, profile.repetitions), warm_up=False, after=after)]


def ext_rows(data_dir: Path, profile: Profile) -> list[Row]:
    directory = generate.extension_dir(data_dir, profile.extensions)
    readelf = f"find {shlex.quote(str(directory))} -name '*.so' -print0 | xargs -0 readelf --dyn-syms -W"
    small = generate.sized_extension(data_dir, profile.small_extension)
    large = generate.sized_extension(data_dir, profile.large_extension)
    small_label = f"{small.stat().st_size >> 10} KB"
    large_label = f"{large.stat().st_size >> 20} MB"
    return [
        Row(f"ext {profile.extensions:,} .so files",
            Side.fixed("ns-strip ext", [*NS_STRIP, "ext", str(directory)], ok=(0, 1)),
            Side.fixed("readelf --dyn-syms -W", shell(readelf)), Goal("<= 2x", max_ratio=2.0)),
        # The same in one process: what splitting the files over the CPUs adds (or, on a busy
        # machine, does not).
        Row(f"ext {profile.extensions:,} .so files, --jobs 1",
            Side.fixed("ns-strip ext --jobs 1", [*NS_STRIP, "ext", "--jobs", "1", str(directory)], ok=(0, 1)),
            Side.fixed("readelf --dyn-syms -W", shell(readelf)), Goal("report")),
        Row(f"ext one {large_label} .so vs one {small_label}",
            Side.fixed(f"ns-strip ext {large_label}", [*NS_STRIP, "ext", str(large)], ok=(0, 1)),
            Side.fixed(f"ns-strip ext {small_label}", [*NS_STRIP, "ext", str(small)], ok=(0, 1)),
            # Start-up is most of both runs, so twice the runs keep noise from deciding it.
            Goal("flat: <= 1.2x", max_ratio=1.2), repetitions=2 * profile.repetitions),
        Row(f"readelf one {large_label} .so vs one {small_label}",
            Side.fixed(f"readelf {large_label}", ["readelf", "--dyn-syms", "-W", str(large)]),
            Side.fixed(f"readelf {small_label}", ["readelf", "--dyn-syms", "-W", str(small)]),
            Goal("reference")),
    ]


def wheel_rows(data_dir: Path, profile: Profile, scratch: Scratch) -> list[Row]:
    wheel = generate.wheel_file(data_dir, profile.wheel_payload)
    members = generate.legacy_wheel_members(wheel)
    record = generate.wheel_record(wheel)
    dist_info = record.rpartition("/")[0]

    def ours() -> tuple[list[str], Callable[[], None]]:
        directory, clean_up = scratch.empty_dir()
        return [*NS_STRIP, "strip", str(wheel), "-o", str(directory / wheel.name)], clean_up

    def by_hand() -> tuple[list[str], Callable[[], None]]:
        copy, clean_up = scratch.copy_file(wheel)
        drop = " ".join(f"-e {shlex.quote(m + ',')}" for m in members)
        script = (
            f"set -e; cd {shlex.quote(str(copy.parent))}; mkdir -p {shlex.quote(dist_info)}\n"
            f"unzip -p {copy.name} {shlex.quote(record)} | grep -v -F {drop} > {shlex.quote(record)}\n"
            f"zip -q -d {copy.name} {' '.join(shlex.quote(m) for m in members)}\n"
            f"zip -q {copy.name} {shlex.quote(record)}\n"
        )
        return shell(script), clean_up

    size = f"{wheel.stat().st_size >> 20} MB"
    return [Row(f"wheel strip, {size} wheel, {len(members)} members", Side("ns-strip strip -o", ours),
                Side("zip -d + RECORD", by_hand), Goal("<= 1.5x", max_ratio=1.5))]


REGISTRY_DRIVER = HERE / "registry_driver.py"


def registry_rows(profile: Profile, scratch: Scratch) -> list[Row]:
    rows = []
    for processes in (1, profile.registry_processes):
        def side(mode: str, processes: int = processes) -> Side:
            def prepare() -> tuple[list[str], Callable[[], None]]:
                directory, clean_up = scratch.empty_dir()
                return [sys.executable, str(REGISTRY_DRIVER), mode, str(directory),
                        "--ops", str(profile.registry_ops), "--processes", str(processes)], clean_up
            return Side(f"{mode} x{processes}", prepare, self_timed=True)

        rows.append(Row(
            f"registry add/remove, {processes} process{'es' if processes > 1 else ''}",
            side("ns-strip"), side("sqlite3"), Goal(">= 2,000 ops/s", min_rate=2000),
            operations=profile.registry_ops * processes, repetitions=min(3, profile.repetitions),
        ))
    return rows


# -- output --------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    memory = "unknown"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def print_results(rows: list[Row], json_path: Path | None) -> None:
    """The table on stdout and, when asked, the same rows and the machine as JSON."""
    info = machine()
    print(format_table(rows, info))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"machine": info, "rows": [row.to_json() for row in rows]}, indent=2) + "\n")


def format_table(rows: list[Row], info: dict[str, str]) -> str:
    header = ("case", "ns-strip", "baseline", "baseline t", "ratio", "CPU ratio", "goal", "peak RSS", "result")
    lines = [tuple(header)]
    for row in rows:
        if row.unavailable:
            lines.append((row.case, "-", row.baseline.label, "-", "-", "-", row.goal.text, "-", "not available"))
            continue
        goal = row.goal.text + (f" ({row.rate:,.0f} ops/s)" if row.rate is not None else "")
        lines.append((
            row.case, _seconds(row.ours_median), row.baseline.label, _seconds(row.baseline_median),
            f"{row.ratio:.2f}x", f"{row.cpu_ratio:.2f}x", goal, f"{row.peak_mib:.0f} MiB", row.verdict(),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    body = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    machine_line = (f"machine: {info['nproc']} cores ({info['cpu']}), {info['memory']} RAM, "
                    f"Python {info['python']}, {info['date']}")
    out = [machine_line, "", rule, body[0], rule, *body[1:], rule]
    for row in rows:
        if row.unavailable:
            out.append(f"not available: {row.case}: {row.unavailable}")
    return "\n".join(out)


GROUPS = ("startup", "scan", "strip", "ext", "wheel", "registry")


def byte_compile_ns_strip() -> None:
    """Byte-compile ns_strip as an installation does (pip, dh_python3): where
    PYTHONDONTWRITEBYTECODE is set, every timed run would otherwise compile its modules again
    (about 30 ms of each ns-strip command measured, which no user pays)."""
    spec = importlib.util.find_spec("ns_strip")
    for location in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(location, quiet=2)


def build_rows(profile: Profile, data_dir: Path, scratch: Scratch, groups: Sequence[str]) -> list[Row]:
    """The rows of the chosen groups; their data is generated (or found in the cache) here."""
    largest = max(profile.sites)
    rows: list[Row] = []
    if "startup" in groups:
        rows += startup_rows()
    if "scan" in groups:
        for count in profile.sites:
            rows += scan_rows(data_dir, count, count == largest)
    if "strip" in groups:
        for count in profile.sites:
            rows += strip_rows(data_dir, count, scratch, count == largest, profile)
    if "ext" in groups:
        rows += ext_rows(data_dir, profile)
    if "wheel" in groups:
        rows += wheel_rows(data_dir, profile, scratch)
    if "registry" in groups:
        rows += registry_rows(profile, scratch)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, two repetitions: a CI smoke run")
    parser.add_argument("--data-dir", type=Path, default=generate.DEFAULT_DATA_DIR,
                        help="where generated data is cached")
    parser.add_argument("--repetitions", type=int, help="timed runs of each side (default 5, --quick 2)")
    parser.add_argument("--only", metavar="GROUPS", help=f"comma-separated subset of {','.join(GROUPS)}")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    groups = args.only.split(",") if args.only else GROUPS
    if not set(groups) <= set(GROUPS):
        parser.error(f"--only: choose from {', '.join(GROUPS)}")
    profile = QUICK if args.quick else FULL
    if args.repetitions:
        profile = dataclasses.replace(profile, repetitions=args.repetitions)
    if importlib.util.find_spec("ns_strip") is None:
        parser.error("ns_strip is not importable: install it first (python -m pip install -e .)")

    def log(text: str) -> None:
        print(f"# {text}", file=sys.stderr, flush=True)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    scratch = Scratch(args.data_dir)
    try:
        log("generating data (cached after the first run)")
        byte_compile_ns_strip()
        rows = build_rows(profile, args.data_dir, scratch, groups)
        run_rows(rows, profile.repetitions, log)
    finally:
        scratch.close()
    print_results(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
