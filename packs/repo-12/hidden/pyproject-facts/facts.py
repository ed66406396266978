"""Print the packaging facts of ./pyproject.toml in a normal form (the expected lines live in the assert)."""

import ast
import re
import tomllib

with open("pyproject.toml", "rb") as handle:
    data = tomllib.load(handle)
project = data.get("project", {})
build = data.get("build-system", {})


def dynamic_version():
    """A version declared dynamic and read by setuptools from a module attribute, e.g.
    [tool.setuptools.dynamic] version = {attr = "linetally.__version__"}."""
    attr = data.get("tool", {}).get("setuptools", {}).get("dynamic", {}).get("version", {}).get("attr", "")
    module, _, name = attr.rpartition(".")
    for root in ("src", "."):
        for candidate in (f"{root}/{module.replace('.', '/')}/__init__.py", f"{root}/{module.replace('.', '/')}.py"):
            try:
                tree = ast.parse(open(candidate, encoding="utf-8").read())
            except OSError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                    return getattr(node.value, "value", None)
    return None


def requirement(text):
    """'Tabulate >= 0.9' -> 'tabulate>=0.9' (names compare case-, space- and _/- insensitively)."""
    text = re.sub(r"\s+", "", text)
    name = re.match(r"[A-Za-z0-9._-]+", text)
    return re.sub(r"[._]", "-", name.group(0)).lower() + text[name.end():] if name else text


print("name", project.get("name"))
print("version", project.get("version") or dynamic_version())
print("description", project.get("description"))
print("requires-python", re.sub(r"\s+", "", str(project.get("requires-python"))))
print("dependencies", ",".join(sorted(requirement(dep) for dep in project.get("dependencies", []))))
for script, target in sorted(project.get("scripts", {}).items()):
    print("script", script, re.sub(r"\s+", "", target))
print("backend", build.get("build-backend"))
print("requires setuptools", any(requirement(r).startswith("setuptools") for r in build.get("requires", [])))
