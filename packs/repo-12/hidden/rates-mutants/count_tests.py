"""How many test functions tests/test_rates.py defines (top level and in classes)."""

import ast

with open("tests/test_rates.py", encoding="utf-8") as handle:
    tree = ast.parse(handle.read())
names = [node.name for node in ast.walk(tree)
         if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")]
print(f"tests {len(set(names))}")
