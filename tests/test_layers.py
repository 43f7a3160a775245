"""Subpackages import only downward: robots -> physics -> scenes -> envs -> agents -> data -> benchmarks -> cli.

Walks every module's imports with ``ast`` (relative and absolute, at module level and inside
functions) and fails on an import of a higher layer. The package's own modules in
training_ground/ (``errors``, ``progress``, ``__version__``) import nothing of the package and
may be used by every layer; ``cli`` is the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["robots", "physics", "scenes", "envs", "agents", "data", "benchmarks", "cli"]
SHARED = {"errors", "progress", "__version__"}  # in training_ground/, below every layer


def layer_of(module: str) -> str | None:
    """The layer of a ``training_ground.x.y`` module name (None for the package's shared modules)."""
    parts = module.split(".")
    if parts[0] != "training_ground" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in LAYERS else None


def module_files():
    for layer in LAYERS[:-1]:
        for path in sorted((ROOT / layer).rglob("*.py")):
            relative = path.relative_to(ROOT / layer).with_suffix("")
            parts = [part for part in relative.parts if part != "__init__"]
            yield path, ".".join(["training_ground", layer, *parts]), path.name == "__init__.py"
    for path in sorted((ROOT / "training_ground").glob("*.py")):
        yield path, "training_ground" + ("" if path.stem == "__init__" else f".{path.stem}"), path.stem == "__init__"


def imported_modules(path: Path, module: str, is_package: bool):
    """(line, imported module name) for every import in the file, relative ones resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from . import x`` imports the submodule x
            names = [f"{target}.{alias.name}" for alias in node.names] if not node.module or node.level == 0 and \
                target == "training_ground" else [target]
            for name in names:
                yield node.lineno, name


def violations():
    found = []
    for path, module, is_package in module_files():
        mine = "cli" if module == "training_ground.cli" else layer_of(module)
        if mine is None:  # training_ground/__init__.py and errors.py
            continue
        for line, name in imported_modules(path, module, is_package):
            if not name.startswith("training_ground"):
                continue
            if name.split(".")[-1] in SHARED or name == "training_ground" or name.split(".")[:2] in (
                    ["training_ground", shared] for shared in SHARED):
                continue
            target = "cli" if name == "training_ground.cli" else layer_of(name)
            if target is not None and LAYERS.index(target) > LAYERS.index(mine):
                found.append(f"{path.relative_to(ROOT)}:{line} ({mine}) imports {name} ({target})")
    return found


def test_no_subpackage_imports_a_higher_layer():
    assert violations() == []


def test_the_walk_finds_imports_and_would_catch_an_upward_one(tmp_path):
    # The checker itself: a module of physics importing envs is reported.
    fake = tmp_path / "fake.py"
    fake.write_text("from ..envs import make_task_env\nfrom . import model\nimport training_ground.data.collect\n")
    names = [name for _, name in imported_modules(fake, "training_ground.physics.fake", False)]
    assert names == ["training_ground.envs", "training_ground.physics.model", "training_ground.data.collect"]
    assert [layer_of(name) for name in names] == ["envs", "physics", "data"]


@pytest.mark.parametrize("shared", ["errors", "progress"])
def test_the_shared_modules_import_nothing_of_the_package(shared):
    path = ROOT / "training_ground" / f"{shared}.py"
    assert not [name for _, name in imported_modules(path, f"training_ground.{shared}", False)
                if name.startswith("training_ground")]


def test_physics_takes_postures_not_keyframe_names():
    # Keyframes ("standing", "arms_ready") are the tasks' vocabulary; engines start at robot.home_posture.
    uses = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in sorted((ROOT / "physics").rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and node.attr in ("keyframe", "keyframes")]
    assert uses == []
