"""The import contracts that keep services independent are real and enforced."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


BASE = {
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
