"""The Docker image's lock files still cover pyproject.toml: the image installs Fovea with `--no-deps`, so
a runtime dependency missing from requirements.lock would only show as an import error in production."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pinned(lock: str) -> dict[str, Version]:
    return {canonicalize_name(name): Version(version) for name, version in _PIN.findall(lock)}


def test_every_runtime_dependency_is_locked_at_a_version_it_allows() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    locked = pinned((ROOT / "requirements.lock").read_text())
    problems = []
    for line in project["project"]["dependencies"]:
        requirement = Requirement(line)
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{line}: locked {version}")
    assert problems == [], "run `make lock` after changing dependencies: " + "; ".join(problems)


def test_the_build_backend_is_locked_at_a_version_the_build_allows() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    locked = pinned((ROOT / "build-requirements.lock").read_text())
    for line in project["build-system"]["requires"]:
        requirement = Requirement(line)
        assert requirement.specifier.contains(locked[canonicalize_name(requirement.name)]), line


def test_every_pin_carries_a_hash() -> None:
    for name in ("requirements.lock", "build-requirements.lock"):
        text = (ROOT / name).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        assert entries and all("--hash=sha256:" in entry for entry in entries if "==" in entry), name
