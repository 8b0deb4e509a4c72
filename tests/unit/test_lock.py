"""Installs are reproducible: uv.lock agrees with pyproject.toml, and this environment holds
exactly the locked version of every package the lock resolves for it."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCK = tomllib.loads((REPO / "uv.lock").read_text())
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCKED = {canonicalize_name(p["name"]): p.get("version") for p in LOCK["package"]}
INSTALLED_EXTRAS = ("dev", "eval", "archive-s3")  # what `make setup` syncs (Makefile EXTRAS)


def _declared() -> list[Requirement]:
    project = PROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements.extend(extra)
    return [Requirement(r) for r in requirements]


def test_every_declared_dependency_is_locked_at_a_version_it_allows() -> None:
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in LOCKED, f"{requirement} is declared but missing from uv.lock"
        assert requirement.specifier.contains(LOCKED[name], prereleases=True), (
            f"uv.lock has {name}=={LOCKED[name]}, outside {requirement}"
        )


def test_the_lock_is_current_for_pyproject() -> None:
    """`uv lock --check` fails when pyproject.toml changed after the lock was written."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        uv = Path(shutil.which("uv") or "uv")
    result = subprocess.run(
        [str(uv), "lock", "--check", "--offline", "--python", sys.executable],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_this_environment_holds_exactly_the_locked_versions() -> None:
    project = canonicalize_name(PROJECT["project"]["name"])
    wanted = {canonicalize_name(r.name) for r in _declared() if _installed_by_setup(r)}
    assert wanted, "no declared dependency is installed by make setup"
    seen = 0
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name == project or name not in LOCKED:
            continue
        seen += 1
        assert dist.version == LOCKED[name], (
            f"{name} {dist.version} is installed but uv.lock pins {LOCKED[name]}: run make setup"
        )
    assert seen >= len(wanted)


def _installed_by_setup(requirement: Requirement) -> bool:
    extras = PROJECT["project"]["optional-dependencies"]
    text = str(requirement)
    if text in PROJECT["project"]["dependencies"]:
        return True
    return any(text in extras[e] for e in INSTALLED_EXTRAS)


def test_the_makefile_bootstraps_the_uv_the_lock_pins() -> None:
    pinned = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert pinned is not None
    assert pinned.group(1) == LOCKED["uv"]


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for folder in ("shared", "services", "adapterctl", "tests", "infra", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found


def test_every_package_we_import_is_declared_and_nothing_declared_goes_unused() -> None:
    ours = {"shared", "services", "adapterctl", "tests", "infra", "benchmarks"}
    owners = metadata.packages_distributions()
    declared = {canonicalize_name(r.name) for r in _declared()}
    imported: set[str] = set()
    for module in _imported_top_level_modules() - ours:
        if module in sys.stdlib_module_names or module == "__future__" or module not in owners:
            continue  # stdlib, or absent here (vllm: GPU machines only)
        imported.update(canonicalize_name(d) for d in owners[module])
    undeclared = imported - declared - NOT_DECLARED
    assert not undeclared, f"imported but not declared in pyproject.toml: {sorted(undeclared)}"
    unused = declared - imported - USED_WITHOUT_IMPORT
    assert not unused, f"declared but never imported: {sorted(unused)}"


# Packages a declared one brings that we import only through it (their owner pins them).
NOT_DECLARED = {canonicalize_name(n) for n in ("packaging", "typing-extensions", "mode-streaming")}
# Declared, used, never imported by name: servers, plugins, command-line tools.
USED_WITHOUT_IMPORT = {
    canonicalize_name(n)
    for n in (
        "python-multipart",  # FastAPI's form parsing
        "jinja2",  # FastAPI's Jinja2Templates
        "pytest-asyncio",
        "pytest-timeout",
        "pytest-docker",
        "ruff",
        "mypy",
        "import-linter",
        "moto",  # run as `python -m moto.server`
        "uv",
        "playwright",  # pytest.importorskip("playwright.async_api")
        "vllm",  # GPU machines only
    )
}
