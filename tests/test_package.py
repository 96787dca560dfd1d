"""vae-lightning installs like a real package: a wheel built from the repo, installed into a fresh venv (not
editable), runs its console scripts from an empty folder, with the configs it carries inside."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPTS = ("vae-lightning-train", "vae-lightning-evaluate", "vae-lightning-sample", "vae-lightning-report")


def build_wheel(out: Path) -> Path:
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = out.glob("vae_lightning-*.whl")
    return wheel


def test_the_wheel_carries_the_configs_and_the_console_scripts(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for config in ("train.yaml", "evaluate.yaml", "sample.yaml", "likelihood/logistic.yaml", "model/prior/vamp.yaml"):
        assert f"vae_lightning/conf/{config}" in names
    for script in SCRIPTS:
        assert f"{script} = vae_lightning." in entry_points
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "vae_lightning").rglob("*.py")}
    assert "vae_lightning/models/priors/vamp.py" in modules and modules <= names  # every subpackage is shipped


@pytest.mark.slow
def test_a_fresh_venv_with_the_wheel_trains_from_an_empty_folder(tmp_path, test_data_dir):
    wheel = build_wheel(tmp_path / "dist")
    venv = tmp_path / "fresh"
    env = {**os.environ, "VAE_LIGHTNING_DATA_DIR": str(test_data_dir), "VAE_LIGHTNING_CACHE_DIR": str(tmp_path / "cache"),
           "WANDB_SILENT": "true"}
    env.pop("PYTHONPATH", None)  # nothing of the clone: pip would take a build's egg-info there for an installed copy
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
                             capture_output=True, text=True, timeout=1800, env=env)
    assert install.returncode == 0, install.stderr[-3000:]
    empty = tmp_path / "empty"
    empty.mkdir()

    where = subprocess.run([venv / "bin" / "python", "-c", "import vae_lightning; print(vae_lightning.__file__)"],
                           cwd=empty, capture_output=True, text=True, env=env, check=True)
    assert where.stdout.strip().startswith(str(venv)), where.stdout  # the installed copy, not the clone

    refused = subprocess.run([venv / "bin" / "vae-lightning-train", "model.latent_dim=0"], cwd=empty,
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "error: model.latent_dim=0 is not allowed; use an integer >= 1")

    trained = subprocess.run([venv / "bin" / "vae-lightning-train", "debug=fast"], cwd=empty, capture_output=True,
                             text=True, env=env, timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run,) = (empty / "outputs" / "runs").iterdir()
    assert (run / "metrics.json").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in empty.iterdir()) == ["outputs"]  # nothing else written into the folder

    reported = subprocess.run([venv / "bin" / "vae-lightning-report", str(empty / "nowhere")], cwd=empty,
                              capture_output=True, text=True, env=env, timeout=120)
    assert reported.returncode == 2 and reported.stderr.startswith("error: ")
