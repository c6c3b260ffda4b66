"""environment.yml and pyproject.toml must list the same dependencies (every extra included)."""

import tomllib
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]).union(*project["optional-dependencies"].values())
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


def _third_party_private_imports():
    """(file, dotted name) for every import in lib/ of a private name of another package."""
    import ast

    found = []
    for path in sorted((PROJECT / "lib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] not in ("lib", "__future__") and any(
                        part.startswith("_") for part in parts):
                    found.append((str(path.relative_to(PROJECT)), name))
    return found


def test_lib_imports_no_private_names_of_other_packages():
    # A private name (sklearn.base._fit_context, sklearn.utils._param_validation) can move in
    # any minor release; lib validates its parameters itself (lib._checks), so no upper bound
    # on scikit-learn is needed.
    assert _third_party_private_imports() == []


def test_runtime_and_test_dependencies_are_where_they_are_used():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    runtime = {spec.split(">")[0].split("=")[0] for spec in project["dependencies"]}
    test = {spec.split(">")[0].split("=")[0] for spec in project["optional-dependencies"]["test"]}
    assert "pillow" in runtime          # lib.datasets.coil20 reads PNGs with PIL
    assert "pyyaml" in test and "pyyaml" not in runtime   # only the tests read YAML
    # Only lib.clusters needs dask-jobqueue (the cluster extra); tests/test_clusters.py too.
    cluster = {spec.split(">")[0] for spec in project["optional-dependencies"]["cluster"]}
    assert "dask-jobqueue" in cluster and "dask-jobqueue" in test
    assert "dask-jobqueue" not in runtime
