"""The shape of the code: the import graph's floors (import-linter), short functions, the service's one door."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny import ROOT

PACKAGES = ("translate", "service")
MAX_FUNCTION_LINES = 80


def python_files():
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_import_contracts_hold():
    """`lint-imports` checks the contracts in pyproject.toml: floors, no cycles, no service in the library."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports not installed: pip install -e '.[dev]'")
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_no_function_is_longer_than_a_page():
    long = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_the_service_uses_the_library_through_its_public_api():
    deep = []
    for path in sorted((ROOT / "service").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("translate."):
                deep.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module}")
    assert not deep, deep


def test_only_the_run_folder_module_spells_run_files():
    names = ("best.pt", "last.pt", "log.jsonl", "summary.json", "analysis.json", "tuned.json", ".beam", ".hyp.txt")
    found = []
    for path in python_files():
        if path.name == "runfolder.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree) if _has_docstring(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in names if name in node.value]
    assert not found, found


def _has_docstring(node) -> bool:
    return (
        isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and bool(node.body)
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    )
