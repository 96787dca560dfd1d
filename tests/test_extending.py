"""docs/extending.md's worked example, as written there: two new files make a prior that trains."""

import json
import os
import re
import shutil
import subprocess
import sys

import torch
from conftest import ROOT, run_module
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


NEW_OBJECTIVE = '''"""-E_q[log p(x|z)] + weight * KL: an example objective added with two files."""

import torch

from vae_lightning.contracts import Fraction, checked
from vae_lightning.models.objectives.base import LatentModel, Objective, ObjectiveTerms, TrainingContext, kl_terms


@checked("model.objective")
class DownweightedKL(Objective):
    def __init__(self, weight: Fraction = 0.5) -> None:
        self.weight = weight

    def __call__(self, model: LatentModel, x: torch.Tensor, context: TrainingContext) -> ObjectiveTerms:
        sample = model.sample_latents(x)
        recon, (kl, _) = -sample.log_px_z[0], kl_terms(model, sample)
        return ObjectiveTerms(loss=(recon + self.weight * kl).mean(), recon=recon, kl=kl)
'''


def test_a_new_component_gets_one_line_answers_from_its_own_contract_and_trains(tmp_path):
    """Module + config only, no edit of utils/validation.py: its bad values are refused before torch is imported."""
    from test_first_contact import HEAVY, PROBE

    project = tmp_path / "project"
    shutil.copytree(ROOT / "vae_lightning", project / "vae_lightning", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "vae_lightning" / "models" / "downweighted_kl.py").write_text(NEW_OBJECTIVE)
    (project / "vae_lightning" / "conf" / "model" / "objective" / "downweighted_kl.yaml").write_text(
        "_target_: vae_lightning.models.downweighted_kl.DownweightedKL\nweight: 0.5\n")
    env = {**os.environ, "PYTHONPATH": str(project)}
    for bad, expected in [
        ("model.objective.weight=2", "error: model.objective.weight=2 is not allowed; use a number in (0, 1]"),
        ("+model.objective.wieght=0.1", "error: model.objective.wieght is not a setting of DownweightedKL; its "
                                        "settings are ['weight']"),
    ]:
        probe = PROBE.format(heavy=HEAVY, module="vae_lightning.train", args=["model/objective=downweighted_kl", bad])
        result = subprocess.run([sys.executable, "-c", probe], cwd=project, env=env, capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.strip() == expected, result.stderr[-2000:]
        assert result.stdout.strip().splitlines()[-1] == "LOADED="  # answered from the source, torch not imported

    run = run_module("vae_lightning.train", "model/objective=downweighted_kl", "model.objective.weight=0.25",
                     "debug=fast", "logger=local", cwd=project, env={"PYTHONPATH": str(project)})
    assert run.returncode == 0, run.stderr[-3000:]
    (run_dir,) = (project / "outputs" / "runs").iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"


def test_a_component_the_preflight_cannot_read_is_refused_by_its_constructor_in_one_line(tmp_path):
    """A subclass whose __init__ lives in another module is not read from source; its inherited contract
    refuses the value when Hydra builds it, and the user sees that one line, not Hydra's wrapped traceback."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "vae_lightning", project / "vae_lightning", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "vae_lightning" / "models" / "renamed_iwae.py").write_text(
        "from vae_lightning.models.objectives.iwae import IWAE\n\n\nclass RenamedIWAE(IWAE):\n    pass\n")
    (project / "vae_lightning" / "conf" / "model" / "objective" / "renamed_iwae.yaml").write_text(
        "_target_: vae_lightning.models.renamed_iwae.RenamedIWAE\nk: 5\n")
    result = run_module("vae_lightning.train", "model/objective=renamed_iwae", "model.objective.k=0", "debug=fast",
                        "logger=local", cwd=project, env={"PYTHONPATH": str(project)})
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == "error: model.objective.k=0 is not allowed; use an integer >= 1"
    (run_dir,) = (project / "outputs" / "runs").iterdir()
    assert json.loads((run_dir / "status.json").read_text()) == {
        "status": "failed", "error": "ConfigError: model.objective.k=0 is not allowed; use an integer >= 1"}
