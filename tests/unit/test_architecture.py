"""The import contracts that keep services independent are real and enforced."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def _pure_modules() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    [pure] = [c for c in config["tool"]["importlinter"]["contracts"] if "Pure" in c["name"]]
    return list(pure["source_modules"])


def _files_for(modules: list[str]) -> dict[str, str]:
    """Empty packages and modules so every module a contract names exists in the tree."""
    files: dict[str, str] = {}
    for module in modules:
        parts = module.split(".")
        for i in range(1, len(parts)):
            files.setdefault("/".join(parts[:i]) + "/__init__.py", "")
        files.setdefault("/".join(parts) + ".py", "")
    return files


PURE = _pure_modules()
BASE = {
    **_files_for(PURE),
    "shared/__init__.py": "",
    "services/__init__.py": "",
    "services/alpha/__init__.py": "import shared\n",
    "services/beta/__init__.py": "import shared\n",
}


def test_the_contracts_pass_on_a_tree_that_keeps_them(tmp_path: Path) -> None:
    _tree(tmp_path, BASE)
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_service_importing_another_service_breaks_the_contract(tmp_path: Path) -> None:
    _tree(tmp_path, {**BASE, "services/alpha/handlers.py": "import services.beta\n"})
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "services.alpha.handlers -> services.beta" in result.stdout


def test_the_kernel_importing_a_service_breaks_the_contract(tmp_path: Path) -> None:
    _tree(tmp_path, {**BASE, "shared/wiring.py": "import services.alpha\n"})
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "shared.wiring -> services.alpha" in result.stdout


def test_a_pure_module_importing_a_database_driver_breaks_the_contract(tmp_path: Path) -> None:
    _tree(tmp_path, {**BASE, "shared/lifecycle.py": "import asyncpg\n"})
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "shared.lifecycle -> asyncpg" in result.stdout


def test_a_pure_module_reaching_a_driver_through_another_module_breaks_the_contract(
    tmp_path: Path,
) -> None:
    _tree(
        tmp_path,
        {**BASE, "shared/lifecycle.py": "import shared.wire\n", "shared/wire.py": "import httpx\n"},
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "shared.wire -> httpx" in result.stdout


def test_the_pure_layer_names_the_kernel_core_and_each_services_decisions() -> None:
    assert {"shared.lifecycle", "shared.pointers", "shared.registry.port"} <= set(PURE)
    assert {m.split(".")[1] for m in PURE if m.startswith("services.")} >= {
        "validator",
        "gpu_evaluator",
        "activator",
        "approval",
    }
