"""The house: the product at the top imports nothing from the lab (lab/), and the lab is only run,
never a dependency of what users run."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path):
    """The top-level names a Python file imports (import X.Y -> X, from X.Y import Z -> X)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_product_imports_nothing_from_the_lab():
    product = sorted(ROOT.glob("*.py"))
    assert len(product) > 10 and not (ROOT / "benchmark.py").exists()
    lab = {path.stem for path in (ROOT / "lab").glob("*.py")} | {"lab"}
    assert {path.name: imported_modules(path) & lab for path in product if imported_modules(path) & lab} == {}
