"""The Space configuration agrees with itself: README front matter, pyproject.toml, requirements.txt, the
model registry and the Space build rehearsal (scripts/space_smoke.sh). No server, no browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, the Space's Python: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# Hugging Face's ZeroGPU docs ("Supported versions") list this one Python.
ZEROGPU_PYTHON = "3.10.13"
# ZeroGPU's ahead-of-time compilation (spaces.aoti_*) needs torch 2.8 or newer.
AOTI_MIN_TORCH = Version("2.8")


def front_matter(text: str) -> dict:
    """The YAML between the first two `---` lines of a README."""
    lines = text.splitlines()
    assert lines and lines[0].strip() == "---", "README.md must start with a --- front matter block"
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    assert end is not None, "README.md front matter has no closing ---"
    return yaml.safe_load("\n".join(lines[1:end])) or {}


def requirements(text: str) -> dict[str, Requirement]:
    """Requirement lines by package name, comments and options (-r, --index-url...) left out."""
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            found[requirement.name.lower()] = requirement
    return found


def floor(requirement: Requirement) -> Version | None:
    """The lowest version a requirement admits, from its >=, ==, ~= or > specifiers; None if unbounded."""
    bounds = [
        Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=", ">", "===")
    ]
    return max(bounds) if bounds else None


def smoke_script_python(text: str) -> str | None:
    match = re.search(r"^SPACE_PYTHON=[\"']?([0-9][0-9.]*)[\"']?\s*(#.*)?$", text, re.MULTILINE)
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def meta() -> dict:
    return front_matter((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reqs() -> dict[str, Requirement]:
    return requirements((ROOT / "requirements.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_front_matter_sets_the_python_zerogpu_supports(meta):
    assert "python_version" in meta, "front matter must set python_version (the Space default is not 3.10)"
    # YAML reads an unquoted 3.10 as the float 3.1; insist on a string that says what it means.
    assert isinstance(meta["python_version"], str), f"quote python_version: {meta['python_version']!r}"
    assert meta["python_version"] == ZEROGPU_PYTHON, (
        f"python_version {meta['python_version']} is not ZeroGPU's supported Python {ZEROGPU_PYTHON}"
    )


def test_build_rehearsal_uses_the_front_matter_python(meta):
    script = ROOT / "scripts" / "space_smoke.sh"
    assert script.is_file(), "scripts/space_smoke.sh (the Space build rehearsal) is missing"
    used = smoke_script_python(script.read_text(encoding="utf-8"))
    assert used is not None, "scripts/space_smoke.sh must set SPACE_PYTHON=<version>"
    assert used == str(meta.get("python_version")), (
        f"the rehearsal runs Python {used}, the Space runs {meta.get('python_version')}"
    )


def test_sdk_is_gradio_and_sdk_version_meets_the_gradio_floor(meta, reqs):
    assert meta.get("sdk") == "gradio"
    assert (ROOT / meta.get("app_file", "app.py")).is_file()
    assert "sdk_version" in meta, "front matter must pin sdk_version (the Space installs that gradio)"
    sdk_version = Version(str(meta["sdk_version"]))
    gradio = reqs.get("gradio")
    assert gradio is not None, "requirements.txt must name gradio"
    gradio_floor = floor(gradio)
    assert gradio_floor is not None, "requirements.txt must give gradio a floor"
    assert sdk_version >= gradio_floor, f"sdk_version {sdk_version} is below the gradio floor {gradio_floor}"
    assert gradio.specifier.contains(sdk_version, prereleases=True), (
        f"sdk_version {sdk_version} does not satisfy requirements.txt's {gradio}"
    )


def test_models_lists_every_checkpoint_the_app_can_load(meta):
    from flux_demo.models import MODELS

    hub_models = {spec.repo_id for spec in MODELS.values() if getattr(spec, "repo_id", "")}
    assert hub_models, "the registry names no Hub checkpoint"
    listed = meta.get("models") or []
    assert sorted(set(listed)) == sorted(hub_models), (
        f"front matter models: {sorted(listed)}; the registry loads: {sorted(hub_models)}"
    )
    # Anything preloaded at build time must be a checkpoint the app loads.
    for entry in meta.get("preload_from_hub") or []:
        assert str(entry).split()[0] in hub_models, (
            f"preload_from_hub names {entry!r}, which the app never loads"
        )


def test_requires_python_admits_the_space_python_and_nothing_older(meta, pyproject):
    requires = pyproject["project"].get("requires-python")
    assert requires, "pyproject.toml must set requires-python"
    spec = SpecifierSet(requires)
    assert "python_version" in meta, "front matter must set python_version"
    space_python = Version(str(meta["python_version"]))
    assert spec.contains(space_python), f"requires-python {requires!r} excludes the Space's {space_python}"
    older = Version(f"{space_python.major}.{space_python.minor - 1}")
    assert not spec.contains(older), f"requires-python {requires!r} claims {older}, which nothing tests"


def test_requires_python_claims_no_python_an_installed_requirement_excludes(pyproject, reqs):
    """An installed requirement whose newest release excludes a newer Python (rapidocr-onnxruntime: < 3.13)
    bounds what requires-python may claim. Only Pythons newer than this one are checked: for older ones pip
    picks older releases (diffusers 0.41 on 3.10, where 0.42 needs 3.11)."""
    import sys
    from importlib.metadata import PackageNotFoundError, metadata

    claimed = SpecifierSet(pyproject["project"]["requires-python"])
    candidates = [Version(f"3.{minor}") for minor in range(sys.version_info.minor + 1, 20)]
    for name in reqs:
        try:
            requires_python = metadata(name).get("Requires-Python")
        except PackageNotFoundError:
            continue
        if not requires_python:
            continue
        allowed = SpecifierSet(requires_python)
        for python in candidates:
            assert not (claimed.contains(python) and not allowed.contains(python)), (
                f"requires-python {claimed} claims Python {python}, but the installed {name} "
                f"requires Python {allowed}"
            )


def test_torch_floor_allows_zerogpu_aot_compilation(reqs):
    torch = reqs.get("torch")
    assert torch is not None, "requirements.txt must name torch (a Space installs nothing else)"
    torch_floor = floor(torch)
    assert torch_floor is not None and torch_floor >= AOTI_MIN_TORCH, (
        f"torch floor {torch_floor} is below {AOTI_MIN_TORCH}, which spaces.aoti_* needs"
    )


def test_every_requirement_has_a_floor_and_a_reason():
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        code, _, comment = line.partition("#")
        if not code.strip() or code.strip().startswith("-"):
            continue
        requirement = Requirement(code.strip())
        assert floor(requirement) is not None, f"{requirement.name} has no floor in requirements.txt"
        assert comment.strip(), f"{requirement.name}: say why in a comment on its line"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("---\npython_version: '3.10.13'\nmodels:\n  - a/b\n---\n# Title\n", {"python_version": "3.10.13"}),
        ("---\nsdk_version: 6.31.0\n---\n---\n", {"sdk_version": "6.31.0"}),
    ],
)
def test_front_matter_parser_reads_only_the_first_block(text, expected):
    parsed = front_matter(text)
    for key, value in expected.items():
        assert str(parsed[key]) == value
