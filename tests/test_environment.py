"""environment.yml and pyproject.toml must list the same dependencies."""

import tomllib
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    environment = yaml.safe_load((PROJECT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"]
                       if isinstance(item, dict))
    listed = {spec for spec in pip_section if not spec.startswith("-e")}
    assert listed == declared, (f"only in environment.yml: {sorted(listed - declared)}; "
                                f"only in pyproject.toml: {sorted(declared - listed)}")


def test_torch_is_pinned_exactly_everywhere():
    # A range would let pip pick a CUDA build of several GB on a machine without the CPU wheel.
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    assert "torch==2.13.0" in (PROJECT / "environment.yml").read_text()
