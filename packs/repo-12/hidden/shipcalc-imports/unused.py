"""List imports under src/ that the importing module never uses (names in __all__ count as used)."""

import ast
import pathlib

found = []
for path in sorted(pathlib.Path("src").rglob("*.py")):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            used |= {elt.value for elt in getattr(node.value, "elts", []) if isinstance(elt, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names = [alias.asname or alias.name for alias in node.names]
        else:
            continue
        found += [f"{path}: {name}" for name in names if name not in used]
print("\n".join(found) if found else "no unused imports")
