"""docs/extending.md's worked example, as written there: two new files make a prior that trains."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch
import yaml
from conftest import ROOT, first_fast, run_module
from torch.distributions import Normal, kl_divergence

DOC = ROOT / "docs" / "extending.md"


def worked_example() -> tuple[str, str, str, str]:
    """(module path, module code, config path, config text) from the worked-example section."""
    section = DOC.read_text().split("### Worked example", 1)[1].split("\n## ", 1)[0]
    paths = re.findall(r"^`([\w/.]+\.(?:py|yaml))`:$", section, flags=re.M)
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    config = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(paths) == 2 and len(code) == 1 and len(config) == 1, (paths, len(code), len(config))
    return paths[0], code[0], paths[1], config[0]


def test_the_worked_example_prior_is_two_files_and_trains(tmp_path):
    module_path, code, config_path, config = worked_example()
    project = tmp_path / "project"
    shutil.copytree(ROOT / "vae_lightning", project / "vae_lightning", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "conf").symlink_to("vae_lightning/conf")  # as in a clone
    (project / module_path).write_text(code)
    (project / config_path).write_text(config)

    # the closed-form KL in the example is right (checked against torch.distributions)
    sys.path.insert(0, str(project))
    try:
        namespace: dict = {}
        exec(compile(code, module_path, "exec"), namespace)
    finally:
        sys.path.remove(str(project))
    prior = namespace["LearnedGaussianPrior"](3)
    with torch.no_grad():
        prior.mean.normal_()
        prior.logvar.normal_()
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(prior.mean, torch.exp(0.5 * prior.logvar)))
    torch.testing.assert_close(prior.analytic_kl(mu, logvar), expected.detach())

    name = config_path.rsplit("/", 1)[1].removesuffix(".yaml")
    run = run_module(
        "vae_lightning.train", f"model/prior={name}", "debug=fast", "logger=local", "eval.fid_samples=0",
        cwd=project, env={"PYTHONPATH": str(project)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (run_dir,) = (project / "outputs" / "runs").iterdir()
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert len(saved["test_details"]["kl_per_dim"]) == 20  # the example's closed-form KL was used
    checkpoint = torch.load(next((run_dir / "checkpoints").glob("last*.ckpt")), weights_only=True)
    assert {"prior.mean", "prior.logvar"} <= set(checkpoint["state_dict"])


#: one new component of each kind, as a contributor would add it: (module, code, config file, config text,
#: the group choice, a bad value and its one-line answer)
NEW_COMPONENTS = {
    "likelihood": ("models/likelihoods/laplace.py", '''"""Laplace pixels: a density of dequantised 8-bit pixels."""

import math

import torch

from vae_lightning.rules import Positive, checked
from vae_lightning.models.likelihoods.base import Likelihood


@checked
class LaplaceLikelihood(Likelihood):
    dequantize = True

    def __init__(self, scale: Positive = 0.1) -> None:
        super().__init__()
        self.scale = scale

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        per_pixel = -(x - torch.sigmoid(params)).abs() / self.scale - math.log(2 * self.scale)
        return per_pixel.expand_as(params).flatten(-3).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        noise = torch.distributions.Laplace(0.0, self.scale).sample(params.shape).to(params.device)
        return (torch.sigmoid(params) + noise).clamp(0, 1)
''', "conf/likelihood/laplace.yaml", "_target_: vae_lightning.models.likelihoods.laplace.LaplaceLikelihood\nscale: 0.1\n",
        "likelihood=laplace", "likelihood.scale=0", "error: likelihood.scale=0 is not allowed; use a number > 0"),
    "prior": ("models/priors/scaled_normal.py", '''"""p(z) = N(0, scale^2 I), with its closed-form KL."""

import math

import torch

from vae_lightning.rules import Positive, checked
from vae_lightning.models.priors.base import Prior


@checked
class ScaledNormalPrior(Prior):
    def __init__(self, latent_dim: int, scale: Positive = 1.0, encode=None) -> None:
        super().__init__(latent_dim)
        self.scale = scale

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return (-0.5 * (z / self.scale).pow(2) - math.log(self.scale) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.scale * self._normal((n, self.latent_dim), generator)

    def analytic_kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return math.log(self.scale) - 0.5 * logvar + (logvar.exp() + mu.pow(2)) / (2 * self.scale**2) - 0.5
''', "conf/model/prior/scaled_normal.yaml", "_target_: vae_lightning.models.priors.scaled_normal.ScaledNormalPrior\n"
        "_partial_: true\nscale: 2.0\n", "model/prior=scaled_normal", "model.prior.scale=-1",
        "error: model.prior.scale=-1 is not allowed; use a number > 0"),
    "objective": ("models/objectives/downweighted_kl.py", '''"""-E_q[log p(x|z)] + weight * KL."""

import torch

from vae_lightning.rules import Fraction, checked
from vae_lightning.models.objectives.base import LatentModel, Objective, ObjectiveTerms, TrainingContext, kl_terms


@checked
class DownweightedKL(Objective):
    def __init__(self, weight: Fraction = 0.5) -> None:
        self.weight = weight

    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        sample = model.sample_posterior(x)
        recon, (kl, _) = -sample.log_px_z[0], kl_terms(model, sample)
        return ObjectiveTerms(loss=(recon + self.weight * kl).mean(), recon=recon, kl=kl)
''', "conf/model/objective/downweighted_kl.yaml",
        "_target_: vae_lightning.models.objectives.downweighted_kl.DownweightedKL\nweight: 0.5\n",
        "model/objective=downweighted_kl", "model.objective.weight=2",
        "error: model.objective.weight=2 is not allowed; use a number in (0, 1]"),
    "posterior": ("models/posteriors/affine.py", '''"""z = exp(s) * z_0 + t after the Gaussian, s and t shared by every x."""

import math

import torch
from torch import nn

from vae_lightning.models.posteriors.base import Posterior, diagonal_sample
from vae_lightning.rules import Positive, checked


@checked
class AffinePosterior(Posterior):
    def __init__(self, latent_dim: int, init_scale: Positive = 1.0) -> None:
        super().__init__(latent_dim)
        self.log_scale = nn.Parameter(torch.full((latent_dim,), math.log(init_scale)))
        self.shift = nn.Parameter(torch.zeros(latent_dim))

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, log_q = diagonal_sample(mu, logvar, eps)
        return z * self.log_scale.exp() + self.shift, log_q - self.log_scale.sum()
''', "conf/model/posterior/affine.yaml",
        "_target_: vae_lightning.models.posteriors.affine.AffinePosterior\n_partial_: true\ninit_scale: 1.0\n",
        "model/posterior=affine", "model.posterior.init_scale=0",
        "error: model.posterior.init_scale=0 is not allowed; use a number > 0"),
    "network": ("models/networks/linear.py", '''"""A linear encoder: q(z|x)'s mean and log-variance are affine in the pixels."""

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

from vae_lightning.rules import Positive, checked
from vae_lightning.models.networks.base import Encoder


@checked
class LinearEncoder(Encoder):
    def __init__(self, image_shape: Sequence[int], latent_dim: int, init_gain: Positive = 1.0) -> None:
        super().__init__()
        self.head = nn.Linear(prod(image_shape), 2 * latent_dim)
        nn.init.xavier_uniform_(self.head.weight, gain=init_gain)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(x.flatten(1)).chunk(2, dim=-1)
        return mu, logvar
''', "conf/model/encoder/linear.yaml",
        "_target_: vae_lightning.models.networks.linear.LinearEncoder\n_partial_: true\ninit_gain: 1.0\n",
        "model/encoder=linear", "model.encoder.init_gain=0", "error: model.encoder.init_gain=0 is not allowed; use a number > 0"),
}


@pytest.mark.parametrize("kind", first_fast(sorted(NEW_COMPONENTS)))
def test_a_new_component_is_two_files_gets_one_line_answers_from_its_own_contract_and_trains(tmp_path, kind):
    """Module + config only, no other edit: its bad value and a misspelt setting are refused in one line before
    torch is imported, from the component's own annotations, and it trains."""
    from test_first_contact import HEAVY, PROBE

    module, code, config_file, config, choice, bad, expected = NEW_COMPONENTS[kind]
    project = tmp_path / "project"
    shutil.copytree(ROOT / "vae_lightning", project / "vae_lightning", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "vae_lightning" / module).write_text(code)
    (project / "vae_lightning" / config_file).write_text(config)
    env = {**os.environ, "PYTHONPATH": str(project)}
    section = bad.split("=")[0].rpartition(".")[0]
    class_name = config.split("\n")[0].rpartition(".")[2]
    misspelt = (f"+{section}.sclae=0.1", f"error: {section}.sclae is not a setting of {class_name}; its settings are ")
    for override, answer in [(bad, expected), misspelt]:
        probe = PROBE.format(heavy=HEAVY, module="vae_lightning.train", args=[choice, override])
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", probe], cwd=project, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        assert result.returncode == 2 and result.stderr.strip().startswith(answer), result.stderr[-2000:]
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stdout.strip().splitlines()[-1] == "LOADED="  # answered from the source, torch not imported
        print(f"{kind}: {override} answered in {seconds:.2f} s")

    run = run_module("vae_lightning.train", choice, "debug=fast", "logger=local", cwd=project, env={"PYTHONPATH": str(project)})
    assert run.returncode == 0, run.stderr[-3000:]
    (run_dir,) = (project / "outputs" / "runs").iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config.split("\n")[0].split(": ")[1] in json.dumps(resolved)  # the new class is what ran
    assert math.isfinite(json.loads((run_dir / "metrics.json").read_text())["metrics"]["test/loss"])


def test_a_component_that_inherits_its_constructor_is_checked_before_any_work(tmp_path):
    """A subclass whose __init__ lives in another module: the pre-flight follows the import to the base class and
    refuses the value from that contract, before any run folder exists."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "vae_lightning", project / "vae_lightning", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "vae_lightning" / "models" / "objectives" / "renamed_iwae.py").write_text(
        "from vae_lightning.models.objectives.iwae import IWAE\n\n\nclass RenamedIWAE(IWAE):\n    pass\n")
    (project / "vae_lightning" / "conf" / "model" / "objective" / "renamed_iwae.yaml").write_text(
        "_target_: vae_lightning.models.objectives.renamed_iwae.RenamedIWAE\nk: 5\n")
    result = run_module("vae_lightning.train", "model/objective=renamed_iwae", "model.objective.k=0", "debug=fast",
                        "logger=local", cwd=project, env={"PYTHONPATH": str(project)})
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == "error: model.objective.k=0 is not allowed; use an integer >= 1"
    assert not (project / "outputs" / "runs").exists()


def test_a_constructor_refuses_what_its_annotation_does_not_allow_when_built_from_python():
    from vae_lightning.errors import ConfigError
    from vae_lightning.models.objectives.iwae import IWAE

    with pytest.raises(ConfigError, match=r"^model.objective.k=0 is not allowed; use an integer >= 1$"):
        IWAE(k=0)


def test_a_component_that_does_not_subclass_its_contract_is_one_line(tmp_path, compose_train, monkeypatch):
    from vae_lightning.errors import ConfigError
    from vae_lightning.models.build import build_model

    (tmp_path / "plain_encoder.py").write_text(
        "from torch import nn\n\n\nclass PlainEncoder(nn.Linear):\n"
        "    def __init__(self, image_shape, latent_dim):\n        super().__init__(784, 2 * latent_dim)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = compose_train(["model.encoder._target_=plain_encoder.PlainEncoder", "~model.encoder.hidden_dims",
                         "~model.encoder.activation", "~model.encoder.init"])
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    assert str(err.value) == ("model.encoder._target_ builds PlainEncoder, which does not subclass "
                              "vae_lightning.models.networks.base.Encoder (the contract of its kind)")
