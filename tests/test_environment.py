"""environment.yml (conda route) and pyproject.toml (pip route) must ask for the same packages."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PIP = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ @;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in ("book", "test"):
        reqs += [r for r in project["optional-dependencies"][extra] if not r.startswith("ddpm-core")]
    return {_name(r): r for r in reqs}


def _environment_requirements() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for r in dep["pip"]:
                if not r.startswith("-e"):
                    reqs[_name(r)] = r
        elif _name(dep) not in ("python", "pip"):
            name = CONDA_TO_PIP.get(_name(dep), _name(dep))
            reqs[name] = name + dep[len(_name(dep)):]
    return reqs


def test_same_packages_in_both_routes():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert set(py) == set(env), f"only in pyproject: {set(py) - set(env)}; only in environment.yml: {set(env) - set(py)}"


def test_same_version_bounds():
    py, env = _pyproject_requirements(), _environment_requirements()
    for name in py:
        bound_py = py[name][len(name):].replace(" ", "")
        bound_env = env[name][len(name):].replace(" ", "")
        assert bound_py == bound_env, f"{name}: pyproject {py[name]!r} vs environment.yml {env[name]!r}"


def test_environment_installs_the_package_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip
