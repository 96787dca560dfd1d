"""First contact: quick answers before anything heavy is imported, a quiet console, one-line refusals."""

import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, run_module

HEAVY = ("torch", "lightning", "wandb", "torchvision", "matplotlib")

# Runs an entry point as `python -m` would and reports, at exit, which heavy packages it had imported.
PROBE = """
import atexit, runpy, sys
heavy = {heavy!r}
atexit.register(lambda: print("LOADED=" + ",".join(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy)))))
sys.argv = [{module!r}, *{args!r}]
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""

QUICK_ANSWERS = [
    ("vae_lightning.train", ["--help"], 0, "== Configuration groups =="),
    ("vae_lightning.train", ["--cfg", "job"], 0, "latent_dim: 20"),
    ("vae_lightning.train", ["--info"], 0, "Hydra"),
    ("vae_lightning.train", ["model.latent_dim=0"], 2, "error: model.latent_dim=0 is not allowed; use an integer >= 1"),
    ("vae_lightning.train", ["data.source=debian"], 2,
     "error: data.source=debian is only for data.name=fashion_mnist (the only data set it serves)"),
    ("vae_lightning.train", ["eval.gmm_components=0"], 2, "error: eval.gmm_components=0 is not allowed; use an integer >= 1"),
    ("vae_lightning.train", ["likelihood=poisson"], 2, "error: likelihood='poisson' is not allowed; use one of"),
    ("vae_lightning.train", ["logger=null"], 2,
     "error: logger='null' is not allowed; use one of ['csv', 'default', 'local', 'tensorboard', 'wandb'], or ~logger to "
     "leave the group out"),
    ("vae_lightning.train", ["model.latnt_dim=3"], 2,
     "error: model.latnt_dim is not a setting; did you mean model.latent_dim? (+model.latnt_dim=... adds a new key)"),
    ("vae_lightning.train", ["model/objective=iwae", "model.objective.k=0"], 2,
     "error: model.objective.k=0 is not allowed; use an integer >= 1"),
    ("vae_lightning.train", ["model/objective=beta_tc", "model.objective.beta=-1"], 2,
     "error: model.objective.beta=-1 is not allowed; use a number >= 0"),
    ("vae_lightning.train", ["model/objective=cyclical_elbo", "model.objective.ratio=2"], 2,
     "error: model.objective.ratio=2 is not allowed; use a number in (0, 1]"),
    ("vae_lightning.train", ["likelihood=gaussian", "likelihood.sigma_mode=wide"], 2,
     "error: likelihood.sigma_mode='wide' is not allowed; use one of ['fixed', 'learned', 'per_pixel']"),
    ("vae_lightning.train", ["model/prior=vamp", "+model.prior.temperature=2"], 2,
     "error: model.prior.temperature is not a setting of VampPrior; its settings are ['init_std', 'n_components']"),
    ("vae_lightning.train", ["likelihood._target_=vae_lightning.models.likelihoods.GaussianLikelihood"], 2,
     "error: likelihood._target_='vae_lightning.models.likelihoods.GaussianLikelihood' is not allowed; no "
     "GaussianLikelihood in vae_lightning.models.likelihoods"),
    ("vae_lightning.train", ["model.encoder._target_=vae_lightning.models.nets.MLP"], 2,
     "error: model.encoder._target_='vae_lightning.models.nets.MLP' is not allowed; there is no module "
     "vae_lightning.models.nets"),
    ("vae_lightning.train", ["+callbacks.image_grids.every_n_epoch=2"], 2,
     "error: callbacks.image_grids.every_n_epoch is not a setting of ImageGrids; its settings are ['dirpath', "
     "'every_n_epochs', 'n_reconstructions', 'n_samples']"),
    ("vae_lightning.train", ["paths.log_dir=/proc/no/such"], 2, "error: paths.log_dir='/proc/no/such' is not allowed"),
    ("vae_lightning.evaluate", ["ckpt_path=missing.ckpt"], 2, "error: ckpt_path='missing.ckpt' is not allowed; no such file"),
    ("vae_lightning.evaluate", [], 2, "error: ckpt_path is missing"),
    ("vae_lightning.sample", ["ckpt_path=missing.ckpt", "n=4"], 2, "error: ckpt_path='missing.ckpt' is not allowed"),
]


IDS = [" ".join([module.split(".")[1], *args]) for module, args, _, _ in QUICK_ANSWERS]


@pytest.mark.parametrize("module,args,code,expected", QUICK_ANSWERS, ids=IDS)
def test_answers_before_importing_torch_lightning_or_wandb(tmp_path, module, args, code, expected):
    probe = PROBE.format(heavy=HEAVY, module=module, args=args)
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr[-2000:]
    assert expected in result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LOADED="  # none of the heavy packages
    if code == 2:
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_probe_sees_heavy_imports(tmp_path):
    """The check above can fail: a command that does import torch is reported."""
    probe = PROBE.format(heavy=HEAVY, module="vae_lightning.models.priors.base", args=[])
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "LOADED=torch"


#: messages a user cannot act on; none may appear on the console of a run
NOISE = (
    "anonymous setting has no effect",
    "litlogger",
    "LeafSpec",
    "sync_dist=True",
    "Trainer already configured with model summary",
)


def test_a_default_run_prints_no_noise_and_says_what_matters(tmp_path):
    result = run_module("vae_lightning.train", "debug=fast", "eval.fid_samples=0", cwd=tmp_path, as_typed=True)
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    for noise in NOISE:
        assert noise not in console, noise
    assert result.stderr.strip() == ""  # W&B offline, Lightning and the package: nothing on stderr
    assert "wandb:" not in result.stdout  # W&B's offline banners: the summary has the folder and the sync command
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    assert f"run folder: {run_dir}" in result.stdout
    assert "data: mnist from idx" in result.stdout and "train / " in result.stdout
    assert result.stdout.count("GPU available") == 1  # Lightning's lines once, not twice
    assert "Final metrics (nats per example):" in result.stdout
    assert "GPU available" in (run_dir / "train.log").read_text()  # and in the run's log file


@pytest.mark.slow
def test_a_two_process_run_prints_no_noise(tmp_path):
    result = run_module(
        "vae_lightning.train", "debug=fast", "eval.fid_samples=0", "trainer.devices=2", cwd=tmp_path, as_typed=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    for noise in NOISE:
        assert noise not in console, noise
    assert result.stderr.strip() == "" and "wandb:" not in result.stdout
    assert result.stdout.count("Final metrics (nats per example):") == 1  # rank 0 only
    assert result.stdout.count("W&B (offline): wandb sync ") == 1


@pytest.mark.slow
def test_a_model_too_big_for_memory_is_refused_in_one_line(tmp_path):
    result = run_module("vae_lightning.train", "model.latent_dim=1000000000", "logger=local", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: model.latent_dim=1000000000 (with these networks) is not allowed; the model has ")
    assert "GB to train" in line and "GB are available" in line


@pytest.mark.slow
def test_a_batch_larger_than_the_training_split_is_explained(tmp_path):
    result = run_module(
        "vae_lightning.train", "data.batch_size=100000", "debug=fast", "logger=local", "test=false", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    n_train = int(re.search(r"data: mnist from \w+: (\d+) train", result.stdout).group(1))
    assert (
        f"warning: data.batch_size=100000 is not smaller than the {n_train} training examples: "
        f"each epoch is one batch of {n_train} (one optimiser step per epoch)"
    ) in result.stderr.splitlines()  # warnings on stderr, in one line


@pytest.mark.slow
def test_a_checkpoint_holding_code_is_refused_in_one_line(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "vae_lightning_config": {}, "payload": Payload()}, path)
    result = run_module("vae_lightning.evaluate", f"ckpt_path={path}", cwd=tmp_path)
    assert result.returncode == 2
    assert "this must never run" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: ckpt_path='{path}' is not loaded; it holds objects other than tensors and plain values "
        "(code could run on loading), which a vae_lightning checkpoint never does"
    ]


@pytest.mark.slow
def test_a_failing_sweep_job_is_one_line_pointing_at_its_traceback(tmp_path):
    result = run_module(
        "vae_lightning.train", "-m", "debug=fast", "logger=local", "test=false", "model.latent_dim=2",
        "+trainer.bogus=1,2", cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr[-3000:]  # the sweep ran every job, and says that some failed
    assert result.stderr.strip().splitlines()[-1].startswith("error: 2 of 2 sweep jobs did not complete (jobs 0, 1; see ")
    failures = [line for line in result.stderr.splitlines() if "job failed" in line]
    assert len(failures) == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    for job in ("0", "1"):
        assert f"(traceback: {sweep / job / 'error.txt'})" in "\n".join(failures)
        assert "Traceback" in (sweep / job / "error.txt").read_text()
        assert json.loads((sweep / job / "status.json").read_text())["status"] == "failed"


def test_the_outputs_folder_exists_in_a_clone_with_a_readme():
    readme = ROOT / "outputs" / "README.md"
    assert readme.is_file() and "runs/" in readme.read_text()
    tracked = subprocess.run(["git", "ls-files", "outputs"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert tracked == ["outputs/README.md"]


@pytest.mark.slow  # one more short run
def test_mixed_precision_on_the_cpu_is_as_quiet_as_fp32(tmp_path):
    result = run_module("vae_lightning.train", "debug=fast", "eval.fid_samples=0", "logger=local",
                        "trainer.precision=bf16-mixed", cwd=tmp_path, as_typed=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.strip() == ""
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    config = (run_dir / "config.yaml").read_text()
    assert "precision: bf16-mixed" in config and "Final metrics (nats per example):" in result.stdout


def test_a_value_the_preflight_checked_is_not_read_again_when_the_model_is_built(tmp_path, monkeypatch):
    from vae_lightning import rules
    from vae_lightning.command_line import CONF_DIR, check_command_line, compose_config
    from vae_lightning.errors import ConfigError
    from vae_lightning.models.build import build_model
    from vae_lightning.models.objectives.iwae import IWAE
    from vae_lightning.resolvers import register_resolvers

    register_resolvers()
    monkeypatch.chdir(tmp_path)
    read = []
    check_value = rules.check_value
    monkeypatch.setattr(rules, "check_value", lambda setting, *rest: read.append(setting) or check_value(setting, *rest))
    overrides = ["model/objective=iwae", "model.objective.k=3", "logger=local"]
    check_command_line(overrides, "train")
    build_model(compose_config("train", CONF_DIR, overrides))
    assert "model.objective.k" not in read and "model.latent_dim" not in read  # read once, by the pre-flight
    assert "model.encoder.hidden_dims" in read  # a list: the constructor's own check
    with pytest.raises(ConfigError, match=r"^model.objective.k=0 is not allowed; use an integer >= 1$"):
        IWAE(k=0)  # a value no pre-flight saw is checked by the constructor
    assert list(tmp_path.iterdir()) == []
