"""``inference/`` never touches Blender: it runs in the CLI, in worker threads and in tests
without ``bpy``. Two checks: every module imports with Blender's modules unimportable, and
no file under ``inference/`` names one in an import at any level (a function-level import
would only fail when that function runs)."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INFERENCE = ROOT / "inference"
BLENDER_MODULES = {"bpy", "mathutils", "bpy_extras", "bmesh", "gpu", "blf", "aud", "bl_math"}

# Runs in a fresh interpreter: a meta-path finder ahead of all others refuses Blender's
# modules, then every module of photo3d.inference is imported.
IMPORT_ALL = textwrap.dedent("""
    import importlib, importlib.abc, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))

    class NoBlender(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, NoBlender())
    import photo3d.inference as inference
    names = [m.name for m in pkgutil.walk_packages(inference.__path__, "photo3d.inference.")]
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as ex:
            failed.append(f"{name}: {type(ex).__name__}: {ex}")
    leaked = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    print("IMPORTED", len(names))
    print("FAILED", failed)
    print("LEAKED", leaked)
""")


def test_every_inference_module_imports_without_blender():
    r = subprocess.run([sys.executable, "-c", IMPORT_ALL, ",".join(sorted(BLENDER_MODULES))],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines() if line.split(" ", 1)[0].isupper())
    expected = len([p for p in INFERENCE.rglob("*.py") if p.name != "__init__.py"])
    assert int(lines["IMPORTED"]) >= expected, r.stdout
    assert lines["FAILED"] == "[]", lines["FAILED"]
    assert lines["LEAKED"] == "[]", lines["LEAKED"]


def _imports(path: Path):
    """(line, module, relative level) of every import in the file, including those inside
    functions and ``importlib.import_module("x")``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, node.module or "", node.level
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            yield node.lineno, node.args[0].value, 0


FILES = sorted(INFERENCE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_no_blender_import_in_source(path):
    package = path.relative_to(ROOT).parent.parts          # ("inference",) or deeper
    bad = []
    for line, module, level in _imports(path):
        if level == 0:
            if module.partition(".")[0] in BLENDER_MODULES:
                bad.append(f"line {line}: imports {module}")
        elif level > len(package):
            # a relative import that leaves inference/ could reach the Blender-facing modules
            bad.append(f"line {line}: imports {'.' * level}{module} from outside inference/")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)


def test_the_source_check_sees_nested_imports(tmp_path):
    """The AST walk finds imports inside functions and by name, not only at the top."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import bpy.types\n    from mathutils import Vector\n"
                      "    importlib.import_module('bpy_extras')\n", encoding="utf-8")
    assert [m for _, m, _ in _imports(sample)] == ["bpy.types", "mathutils", "bpy_extras"]
