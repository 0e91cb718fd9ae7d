#!/usr/bin/env bash
# Colab rehearsal: run every chapter as a hosted notebook service would, on the NEWEST packages.
#
# 1. A fresh virtual environment with the newest torch, numpy, matplotlib, sympy and scipy that the package index
#    offers (no pins, like Colab), plus a Jupyter kernel.
# 2. Every chapter notebook of _toc.yml is executed top to bottom in a fresh kernel that believes it is in Colab
#    (a `google.colab` module exists), so its first cell, the install cell, really runs: it clones the repository
#    (pointed at this local checkout's committed HEAD instead of GitHub) into a stand-in for /content, installs
#    ddpm_core from the clone with pip and changes into the clone's book/ folder. Outputs are not compared.
# 3. The versions used and each chapter's result (ok / failed with the error, seconds, warnings) go to a JSON
#    results file; the exit status is 1 if any chapter failed.
#
# Environment:
#   DDPM_TORCH                the torch requirement (default: torch, the newest; e.g. torch==2.13.0 to rehearse
#                             the rest of the newest stack against a given torch)
#   DDPM_TORCH_INDEX          index URL for torch (e.g. https://download.pytorch.org/whl/cpu: the default PyPI
#                             wheel of torch for Linux bundles CUDA and is large)
#   DDPM_REHEARSAL_DIR        work folder (default: a new temporary folder; kept, it holds the venv and the clone)
#   DDPM_REHEARSAL_RESULTS    results file (default: _build/colab_rehearsal.json)
#   DDPM_REHEARSAL_CHAPTERS   space-separated notebook paths to run instead of every chapter
#   PYTHON                    the interpreter that creates the venv (default: python3)
#   DDPM_REHEARSAL_PIP_CONFIG the pip configuration file (default: /dev/null, i.e. none: a machine-wide pip.conf
#                             that caps versions or pins an index would make this a rehearsal of that machine, not
#                             of a hosted service; set it to a real file to keep such a configuration)
# Uncommitted changes are not rehearsed (the install cell clones the committed HEAD).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
WORK=${DDPM_REHEARSAL_DIR:-$(mktemp -d -t ddpm-colab-XXXXXX)}
RESULTS=${DDPM_REHEARSAL_RESULTS:-$ROOT/_build/colab_rehearsal.json}
mkdir -p "$WORK" "$(dirname "$RESULTS")"
# no machine-wide pip configuration (for example a cap on torch's version) in the venv or in the install cells
export PIP_CONFIG_FILE=${DDPM_REHEARSAL_PIP_CONFIG:-/dev/null}
echo "rehearsal: work folder $WORK"

if [ ! -x "$WORK/venv/bin/python" ]; then
    "$PY" -m venv "$WORK/venv"
fi
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
TORCH_SPEC=${DDPM_TORCH:-torch}
if [ -n "${DDPM_TORCH_INDEX:-}" ]; then
    "$VPY" -m pip install -q --upgrade "$TORCH_SPEC" --index-url "$DDPM_TORCH_INDEX" --extra-index-url https://pypi.org/simple
else
    "$VPY" -m pip install -q --upgrade "$TORCH_SPEC"
fi
# the newest of everything else a hosted notebook preinstalls, and the kernel machinery
"$VPY" -m pip install -q --upgrade numpy matplotlib sympy scipy scikit-learn ipykernel nbclient nbformat pyyaml

# A branch the install cell can clone with `git clone --depth 1 --branch ...`: the committed HEAD of this checkout.
REHEARSAL_BRANCH="colab-rehearsal-$$"
git -C "$ROOT" branch -f "$REHEARSAL_BRANCH" HEAD >/dev/null
trap 'git -C "$ROOT" branch -D "$REHEARSAL_BRANCH" >/dev/null 2>&1 || true' EXIT

ROOT="$ROOT" WORK="$WORK" RESULTS="$RESULTS" BRANCH="$REHEARSAL_BRANCH" "$VPY" - <<'PYEOF'
import datetime, json, os, platform, subprocess, sys, time, traceback
from importlib.metadata import version, PackageNotFoundError
from pathlib import Path

import nbformat
from nbclient import NotebookClient

root, work, results, branch = Path(os.environ["ROOT"]), Path(os.environ["WORK"]), Path(os.environ["RESULTS"]), os.environ["BRANCH"]
sys.path.insert(0, str(root / "tools"))
import install_cell  # noqa: E402

url, cfg_branch, _ = install_cell.repository(root / "_config.yml")
content = work / "content"
content.mkdir(exist_ok=True)


def colabify(source: str) -> str:
    """The install cell as Colab runs it, but cloning this checkout (file://) into WORK/content instead of /content."""
    return (source.replace(f"--branch {cfg_branch} {url}", f"--branch {branch} file://{root}")
                  .replace(install_cell.COLAB_ROOT + "/", f"{content}/"))


FAKE_COLAB = ("import sys, types\n"
              "sys.modules['google'] = sys.modules.get('google') or types.ModuleType('google')\n"
              "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
              "import os; os.environ.setdefault('MPLBACKEND', 'module://matplotlib_inline.backend_inline')")

chosen = os.environ.get("DDPM_REHEARSAL_CHAPTERS", "").split()
notebooks = [root / p for p in chosen] if chosen else install_cell.chapter_notebooks(root)
versions = {}
for pkg in ("torch", "numpy", "matplotlib", "sympy", "scipy", "scikit-learn", "ipykernel"):
    try:
        versions[pkg] = version(pkg)
    except PackageNotFoundError:
        versions[pkg] = None
versions["python"] = platform.python_version()
print("rehearsal: versions", json.dumps(versions), flush=True)
report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "commit": subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                   text=True).stdout.strip(),
          "versions": versions, "chapters": {}}
for nb_path in notebooks:
    nb = nbformat.read(nb_path, as_version=4)
    first = nb.cells[0]
    if "google.colab" not in "".join(first.source):
        status = {"ok": False, "error": "the first cell is not the install cell", "seconds": 0.0}
    else:
        first.source = colabify("".join(first.source))
        nb.cells.insert(0, nbformat.v4.new_code_cell(FAKE_COLAB))
        # the kernel starts where Colab starts, outside the repository; the install cell changes into the clone
        client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(content)}})
        t0 = time.time()
        try:
            client.execute()
            status = {"ok": True, "seconds": round(time.time() - t0, 1)}
        except Exception as err:  # noqa: BLE001 - record and go on with the next chapter
            status = {"ok": False, "seconds": round(time.time() - t0, 1),
                      "error": str(err).strip().splitlines()[-1][:500] if str(err).strip() else repr(err)}
        warnings = sorted({line.strip()[:300] for cell in nb.cells if cell.cell_type == "code"
                           for out in cell.get("outputs", []) if out.get("name") == "stderr"
                           for line in out.get("text", "").splitlines() if "Warning" in line})
        status["warnings"] = warnings
    name = str(nb_path.relative_to(root))
    report["chapters"][name] = status
    print(f"rehearsal: {'ok  ' if status['ok'] else 'FAIL'} {name} ({status.get('seconds')} s)"
          + ("" if status["ok"] else f": {status['error']}"), flush=True)
    results.write_text(json.dumps(report, indent=1) + "\n")
failed = [n for n, s in report["chapters"].items() if not s["ok"]]
report["passed"] = not failed
results.write_text(json.dumps(report, indent=1) + "\n")
print(f"rehearsal: {len(notebooks) - len(failed)} of {len(notebooks)} chapters passed with "
      + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; results in {results}")
sys.exit(1 if failed else 0)
PYEOF
