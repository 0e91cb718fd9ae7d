"""Where a result came from: the package version and commit, and the machine that computed it.

    >>> from ddpm_core.provenance import version_info, citation
    >>> citation()            # e.g. 'ddpm_core 0.2.0 (commit 1a2b3c4d5e6f), torch 2.13.0, Python 3.11.7'

Used by the benchmarks and experiments to record what produced each number, and by students to cite the exact
version of ``ddpm_core`` that their homework ran (see the book's "For teachers" page).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

__all__ = ["package_commit", "version_info", "citation", "cpu_name", "machine_description"]


def package_commit() -> Optional[str]:
    """The git commit this ``ddpm_core`` was installed from, or None when it cannot be known.

    Looks first at the installation record that pip writes for ``pip install git+URL@REV`` (PEP 610's
    ``direct_url.json``), then, for an editable install or a checkout on ``sys.path``, asks git in the package's
    folder. A wheel installed from an index has no commit.
    """
    try:
        from importlib.metadata import PackageNotFoundError, distribution
        text = distribution("ddpm-core").read_text("direct_url.json")
    except (ImportError, PackageNotFoundError, OSError):  # pragma: no cover - metadata missing
        text = None
    if text:
        try:
            commit = json.loads(text).get("vcs_info", {}).get("commit_id")
        except (ValueError, AttributeError):
            commit = None
        if commit:
            return str(commit)
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or not (Path(lines[0]) / "ddpm_core" / "__init__.py").is_file():
        return None  # not a checkout of this project (e.g. site-packages inside some other repository)
    if Path(lines[0]).resolve() != here.parent:
        return None
    return lines[1]


def version_info() -> dict[str, Any]:
    """``{"ddpm_core": version, "commit": sha or None, "torch": version, "python": version}``."""
    from . import __version__
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        torch_version = None
    return {"ddpm_core": __version__, "commit": package_commit(), "torch": torch_version,
            "python": platform.python_version()}


def citation() -> str:
    """One line naming the exact software a result ran on, for a homework or a paper's methods section."""
    info = version_info()
    commit = f" (commit {info['commit'][:12]})" if info["commit"] else ""
    return f"ddpm_core {info['ddpm_core']}{commit}, torch {info['torch']}, Python {info['python']}"


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: Any = "cpu", *, torch_version: bool = False) -> str:
    """A one-line description of the machine for result tables: the accelerator (for a CUDA ``device``), the CPU,
    its logical cores, torch's threads and the load average (and the torch version with ``torch_version``)."""
    import torch

    device = torch.device(device)
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    parts = [f"{cpu_name()} ({os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads{load})"]
    if device.type == "cuda":
        parts.insert(0, torch.cuda.get_device_name(device))
    if torch_version:
        parts.append(f"torch {torch.__version__}")
    return ", ".join(parts)


if __name__ == "__main__":  # pragma: no cover
    print(citation(), file=sys.stdout)
