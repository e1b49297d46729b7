"""Which source files shape a stage's outputs: the static import closure of its stage module.

The registry lists them as DVC/Snakemake dependencies and the training checkpoints hash them, so
both follow the imports and cannot drift from the code.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Modules that cannot change a stage's outputs: validation, tracking, the runner, error types.
NOT_SHAPING_OUTPUTS = frozenset(
    {"pipeline/config", "pipeline/tracking.py", "pipeline/runner.py", "pipeline/code_deps.py", "core/errors.py"}
)


def _module_files(name: str) -> list[str]:
    """The files a dotted `maskscope...` name may be: a module, or a package's __init__.py."""
    parts = name.split(".")[1:]
    if not parts:
        return []
    candidates = ["/".join(parts) + ".py", "/".join([*parts, "__init__.py"])]
    return [candidate for candidate in candidates if (PACKAGE_ROOT / candidate).is_file()]


def _imports(relative: str) -> set[str]:
    tree = ast.parse((PACKAGE_ROOT / relative).read_text(), relative)
    found: set[str] = set()
    package = relative.rsplit("/", 1)[0].replace("/", ".") if "/" in relative else ""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # a relative import, from the file's own package
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                module = ".".join(["maskscope", *base, *([module] if module else [])])
            if module.startswith("maskscope"):
                found |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("maskscope")}
    return found


def _shapes_outputs(relative: str) -> bool:
    if any(relative == skip or relative.startswith(skip + "/") for skip in NOT_SHAPING_OUTPUTS):
        return False
    # a package marker with nothing but a docstring shapes nothing
    return not (relative.endswith("__init__.py") and not _imports(relative))


@cache
def module_closure(relative: str) -> tuple[str, ...]:
    """Files under src/maskscope (relative to it) that `relative` imports, transitively, itself
    included, minus those that cannot change outputs, plus the package data they read; sorted."""
    seen: set[str] = set()
    pending = [relative]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports(current):
            pending.extend(_module_files(name))
    modules = {path for path in seen if _shapes_outputs(path)}
    return tuple(sorted(modules | {data for module in modules for data in _package_data(module)}))


def _package_data(relative: str) -> set[str]:
    """Data files beside a module that it names (the report's papers.json, the grammar's lexicon)."""
    folder = (PACKAGE_ROOT / relative).parent
    text = (PACKAGE_ROOT / relative).read_text()
    return {
        str(path.relative_to(PACKAGE_ROOT))
        for path in folder.iterdir()
        if path.suffix == ".json" and f'"{path.name}"' in text
    }


def stage_code(stage: str) -> tuple[str, ...]:
    """The code whose change reruns stage `stage` (paths relative to src/maskscope)."""
    return module_closure(f"stages/{stage}.py")


def code_digest(stage: str) -> str:
    """A digest of the stage's code and of torch's version, so a code change never resumes an old run."""
    import torch

    digest = hashlib.sha256(torch.__version__.encode())
    for relative in stage_code(stage):
        digest.update(relative.encode())
        digest.update((PACKAGE_ROOT / relative).read_bytes())
    return digest.hexdigest()
