"""Every command in the bash code blocks of the README and of every docs page, run as typed from a fresh folder
(not the repository), one folder per page.

Only options that shorten a command are appended (FAST); no paths.* or hydra.* overrides. Data comes from the
suite's data folder through $VAE_LIGHTNING_DATA_DIR, a setting users have too (see conftest.py). Placeholders
stand for what the earlier commands wrote: <run> the newest run folder, <best> its best checkpoint, <sweep> the
newest sweep folder. A line in a bash block that this test does not know how to run fails it.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^[ \t]*```bash\n(.*?)^[ \t]*```", re.S | re.M)
FAST = {
    "vae_lightning.train": ["debug=fast", "logger=local"],
    "vae_lightning.evaluate": ["eval.k=5", "eval.fid_samples=100"],
    "vae_lightning.sample": [],
    "vae_lightning.report": [],
}


def page_commands(page: Path) -> list[str]:
    """A page's bash lines, comments removed, in order."""
    lines = []
    for block in BLOCK.findall(page.read_text()):
        for line in block.splitlines():
            command = line.split(" #")[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def newest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: p.stat().st_mtime)


def fill_placeholders(command: str, cwd: Path) -> str:
    if "<run>" in command:
        runs = [p for p in (cwd / "outputs" / "runs").iterdir() if (p / "metrics.json").exists()]
        run = max(runs, key=lambda p: p.stat().st_mtime)
        command = command.replace("<run>", run.name)
        best = Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"])
        command = command.replace("<best>.ckpt", best.name)
    if "<sweep>" in command:
        command = command.replace("<sweep>", newest(cwd / "outputs" / "sweeps").name)
    assert "<" not in command, f"unknown placeholder in a command: {command}"
    return command


def newest_picture(cwd: Path) -> Path:
    return max((cwd / "outputs" / "runs").glob("*/samples/*/*.png"), key=lambda p: p.stat().st_mtime)


def check_outcome(module: str, args: list[str], result: subprocess.CompletedProcess, cwd: Path,
                  started: float) -> None:
    """What each kind of command must leave behind, beyond exit code 0."""
    if module == "vae_lightning.train" and "--help" in args:
        assert "== Configuration groups ==" in result.stdout
    elif module == "vae_lightning.train" and "--cfg" in args:
        assert "model:" in result.stdout and "likelihood:" in result.stdout
    elif module == "vae_lightning.train" and "-m" in args:
        sweep = newest(cwd / "outputs" / "sweeps")
        assert (sweep / "report.md").exists() and "0 failed" in (sweep / "report.md").read_text()
    elif module == "vae_lightning.train":
        run = newest(cwd / "outputs" / "runs")
        assert f"Run folder: {run}" in result.stdout
        assert json.loads((run / "status.json").read_text())["status"] == "completed"
    elif module == "vae_lightning.evaluate":
        assert "Written to " in result.stdout and "test/nll_iw" in result.stdout
    elif module == "vae_lightning.sample":  # a new picture of this command's sampler
        sampler = next((arg.split("=", 1)[1] for arg in args if arg.startswith("sampler=")), "prior")
        assert newest_picture(cwd).name.startswith(f"samples_{sampler}_"), newest_picture(cwd)
        assert newest_picture(cwd).stat().st_mtime >= started
    elif module == "vae_lightning.report":
        assert result.stdout.startswith("# Sweep ")


def run_make_target(target: str, cwd: Path) -> None:
    """``make train`` runs (shortened, into ``cwd``); ``make install`` and ``make test`` are what CI runs
    (``.ci/run``), so here their recipes are read: the editable install with the test tools, the fast suite."""
    make = ["make", "-f", str(ROOT / "Makefile"), f"PY={sys.executable}"]
    if target == "train":
        result = subprocess.run([*make, "train", f"ARGS={' '.join(FAST['vae_lightning.train'])}"], cwd=cwd,
                                capture_output=True, text=True, timeout=900, env={**os.environ, "WANDB_SILENT": "true"})
        assert result.returncode == 0, result.stderr[-3000:]
        check_outcome("vae_lightning.train", [], result, cwd, 0.0)
        return
    recipe = subprocess.run([*make, "-n", target], cwd=ROOT, capture_output=True, text=True)
    assert recipe.returncode == 0, f"a page shows 'make {target}', which the Makefile cannot run: {recipe.stderr}"
    expected = {"install": "-m pip install --quiet -e '.[dev]'", "test": '-m pytest -m "not slow"'}
    assert expected.get(target, "") in recipe.stdout, (target, recipe.stdout)


def run_readme_command(command: str, cwd: Path) -> None:
    words = shlex.split(fill_placeholders(command, cwd))
    if words[0] == "make":
        run_make_target(words[1], cwd)
        return
    script = words[0].startswith("vae-lightning-")  # a console script: installed beside the interpreter
    if script or (words[:2] == ["python", "-m"] and words[2] in FAST):
        module = "vae_lightning." + words[0].removeprefix("vae-lightning-") if script else words[2]
        program = [str(Path(sys.executable).parent / words[0])] if script else [sys.executable, "-m", module]
        args = words[1:] if script else words[3:]
        started = time.time() - 1  # file times have a coarse clock
        result = subprocess.run([*program, *args, *FAST[module]], cwd=cwd, capture_output=True, text=True,
                                timeout=900, env={**os.environ, "WANDB_SILENT": "true"})
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
        check_outcome(module, args, result, cwd, started)
        return
    if words[0] == "python" and words[1].startswith("benchmarks/"):
        # a long measurement (the results' numbers): it must exist and answer --help
        result = subprocess.run([sys.executable, str(ROOT / words[1]), "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "usage:" in result.stdout, command
        return
    pytest.fail(f"a page shows a command this test cannot run: {command}")


def test_the_pages_show_the_main_commands():
    commands = [command for page in PAGES for command in page_commands(page)]
    for expected in ("python -m vae_lightning.train -m ", "python -m vae_lightning.evaluate ",
                     "python -m vae_lightning.sample ", "python -m vae_lightning.report ", "hparams_search=optuna"):
        assert any(expected in c for c in commands), expected


PAGE_IDS = [page.name for page in PAGES if page_commands(page)]


def test_the_pages_commands_are_found():
    """The blocks are read where they are (indented in a list too), so the test below runs each of these pages."""
    assert {"README.md", "configs.md", "devices.md", "results.md"} <= set(PAGE_IDS)


@pytest.mark.slow  # minutes per page (an Optuna search of 20 trials, DDP runs, sweeps): CI runs it
@pytest.mark.parametrize("page", [page for page in PAGES if page_commands(page)], ids=PAGE_IDS)
def test_every_command_of_a_page_runs_as_typed_from_a_fresh_folder(tmp_path, page):
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    for command in page_commands(page):
        run_readme_command(command, cwd)
    assert not (ROOT / "outputs" / "runs").exists() or all(
        p.stat().st_mtime < cwd.stat().st_mtime for p in (ROOT / "outputs" / "runs").iterdir()
    ), f"a command of {page.name} wrote into the repository's outputs/"
