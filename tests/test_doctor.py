"""ns-strip doctor on a real interpreter: a venv whose .pth file adds two more sys.path
entries. Each finding is checked against what importing really does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_registry_support import System, ns_strip, portion, subprocess_env

# What setuptools writes for a pkg_resources-style namespace 'nsp' (one line, executed by site.py).
NSPKG_LINE = (
    "import sys, types, os;has_mfs = sys.version_info > (3, 5);p = os.path.join(sys._getframe(1).f_locals"
    "['sitedir'], *('nsp',));importlib = has_mfs and __import__('importlib.util');has_mfs and "
    "__import__('importlib.machinery');m = has_mfs and sys.modules.setdefault('nsp', importlib.util."
    "module_from_spec(importlib.machinery.PathFinder.find_spec('nsp', [os.path.dirname(p)])));m = m or "
    "sys.modules.setdefault('nsp', types.ModuleType('nsp'));mp = (m or []) and m.__dict__.setdefault("
    "'__path__',[]);(p not in mp) and mp.append(p)\n"
)


class Interpreter:
    def __init__(self, base: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
        self.python = str(base / "venv" / "bin" / "python")
        site = subprocess.run([self.python, "-I", "-c", "import site; print(site.getsitepackages()[0])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        self.site = Path(site)
        self.first, self.second = base / "first", base / "second"
        self.first.mkdir()
        self.second.mkdir()
        (self.site / "extra.pth").write_text(f"{self.first}\n{self.second}\n")

    def write(self, entry: Path, files: dict[str, str]) -> None:
        for relative, text in files.items():
            path = entry / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def imports(self, statement: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.python, "-I", "-c", statement], capture_output=True, text=True,
                              env=subprocess_env(), check=False)

    def doctor(self, *argv: str):
        # NS131 (extra.pth holds path lines only) is asserted once, in the first test.
        ignore = () if "--select" in argv else ("--ignore", "NS131")
        return ns_strip("doctor", "--python", self.python, "--db", "/nonexistent/registry.sqlite3", "--json",
                        *ignore, *argv)


@pytest.fixture(scope="module")
def interpreter(tmp_path_factory: pytest.TempPathFactory) -> Interpreter:
    return Interpreter(tmp_path_factory.mktemp("doctor"))


@pytest.fixture(autouse=True)
def _clean_entries(interpreter: Interpreter):
    yield
    for entry in (interpreter.site, interpreter.first, interpreter.second):
        for child in entry.iterdir():
            if child.name.startswith("ns"):
                subprocess.run(["rm", "-rf", str(child)], check=True)


def test_sys_path_comes_from_the_interpreter(interpreter: Interpreter) -> None:
    result = interpreter.doctor("--select", "NS")
    assert result.code == 0, result.err
    assert result.json["python"] == interpreter.python
    entries = result.json["sys_path"]
    assert str(interpreter.site) in entries
    assert entries.index(str(interpreter.first)) < entries.index(str(interpreter.second))
    # extra.pth holds path lines only: an info that it keeps working under PEP 829, nothing else
    assert [(f["code"], f["path"]) for f in result.json["findings"]] == [("NS131", str(interpreter.site / "extra.pth"))]


def test_regular_package_hiding_namespace_portions(interpreter: Interpreter) -> None:
    interpreter.write(interpreter.site, {"nsa/foo/__init__.py": "NAME = 'foo'\n"})
    interpreter.write(interpreter.first, {"nsa/bar.py": "NAME = 'bar'\n"})
    interpreter.write(interpreter.second, {"nsa/__init__.py": "REGULAR = True\n"})
    assert interpreter.imports("import nsa.foo").returncode != 0  # really hidden

    result = interpreter.doctor()
    assert result.code == 1
    (finding,) = result.json["findings"]
    assert finding["code"] == "NS501"
    assert finding["path"] == str(interpreter.second / "nsa")
    assert finding["hidden"] == [str(interpreter.site / "nsa"), str(interpreter.first / "nsa")]
    # a regular package's __init__.py is never to be deleted (issue 12): the advice is about the portions
    assert "__init__" not in finding["message"] and "move those modules" in finding["message"]

    (interpreter.second / "nsa" / "__init__.py").unlink()
    assert interpreter.doctor().json["findings"] == []
    assert interpreter.imports("import nsa.foo, nsa.bar").returncode == 0


def test_pkgutil_portion_collects_the_others(interpreter: Interpreter) -> None:
    interpreter.write(interpreter.first, {
        "nsb/__init__.py": '__path__ = __import__("pkgutil").extend_path(__path__, __name__)\n',
        "nsb/one.py": "",
    })
    interpreter.write(interpreter.second, {"nsb/two.py": ""})
    assert interpreter.imports("import nsb.one, nsb.two").returncode == 0
    assert interpreter.doctor().json["findings"] == []


def test_nested_namespace_and_module_hiding(interpreter: Interpreter) -> None:
    interpreter.write(interpreter.site, {"nsc/inner/x.py": ""})
    interpreter.write(interpreter.first, {"nsc/inner.py": "MODULE = True\n"})
    assert interpreter.imports("import nsc.inner.x").returncode != 0
    (finding,) = interpreter.doctor().json["findings"]
    assert (finding["code"], finding["namespace"]) == ("NS501", "nsc.inner")
    assert "the module" in finding["message"]


def test_leftover_nspkg_pth_and_stale_bytecode(interpreter: Interpreter) -> None:
    interpreter.write(interpreter.site, {"nsp_old-1.0-nspkg.pth": NSPKG_LINE, "nsp/m.py": ""})
    compiled = interpreter.site / "nsq" / "__init__.py"
    interpreter.write(interpreter.site, {"nsq/__init__.py": "", "nsq/m.py": ""})
    subprocess.run([interpreter.python, "-m", "py_compile", str(compiled)], check=True)
    compiled.unlink()  # stripped, but its bytecode stayed
    result = interpreter.doctor()
    assert result.code == 0  # warnings only
    by_code = {f["code"]: f for f in result.json["findings"]}
    assert sorted(by_code) == ["NS502", "NS503"]
    assert by_code["NS502"]["path"] == str(interpreter.site / "nsp_old-1.0-nspkg.pth")
    assert "for nsp," in by_code["NS502"]["message"]
    assert by_code["NS503"]["path"] == str(interpreter.site / "nsq" / "__pycache__")
    assert by_code["NS503"]["files"][0].startswith("__init__.")


def test_registry_drift_is_reported(interpreter: Interpreter, tmp_path: Path) -> None:
    system = System(tmp_path / "root")
    a = system.stage("python3-nsx-a", portion("nsx", "a"), tmp_path)
    system.install(a, "pkgutil")
    (system.site / "nsx" / "__init__.py").unlink()
    result = ns_strip("doctor", "--python", interpreter.python, "--root", str(system.root), "--json",
                      "--ignore", "NS131")
    assert result.code == 1
    assert [f["code"] for f in result.json["findings"]] == ["NS512"]
    assert result.json["registry"].endswith("registry.sqlite3")


@pytest.mark.parametrize("python, problem", [("/nonexistent/python", "cannot run it"), ("/bin/false", "exited")])
def test_unusable_interpreter(python: str, problem: str) -> None:
    result = ns_strip("doctor", "--python", python)
    assert result.code == 3
    assert problem in result.err and python in result.err and len(result.err.splitlines()) == 1
