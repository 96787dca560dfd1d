"""Runs made by earlier versions (their classes had other module paths) still evaluate and resume."""

import hydra
import pytest
import yaml
from omegaconf import OmegaConf

from vae_lightning.checkpoints import checkpoint_config
from vae_lightning.earlier_versions import RENAMED_TARGETS, upgraded
from vae_lightning.errors import ConfigError
from vae_lightning.models.vae import CONFIG_KEY
from vae_lightning.utils.resume import check_unchanged


def test_every_renamed_target_names_a_class_of_today_and_none_of_the_old_paths_exists():
    for old, new in RENAMED_TARGETS.items():
        assert hydra.utils.get_class(new).__name__ == old.rpartition(".")[2]
        with pytest.raises(ImportError):
            hydra.utils.get_class(old)  # the old path is gone: the table is what keeps old runs working


def test_targets_are_upgraded_anywhere_in_a_config_and_nothing_else_changes():
    old = {"model": {"_target_": "vae_lightning.models.vae_module.VAE", "latent_dim": 20,
                     "encoder": {"_target_": "vae_lightning.models.networks.MLPEncoder", "hidden_dims": [400]}},
           "callbacks": [{"_target_": "somewhere.Else"}]}
    assert upgraded(old) == {
        "model": {"_target_": "vae_lightning.models.vae.VAE", "latent_dim": 20,
                  "encoder": {"_target_": "vae_lightning.models.networks.mlp.MLPEncoder", "hidden_dims": [400]}},
        "callbacks": [{"_target_": "somewhere.Else"}]}


def test_a_checkpoint_of_an_earlier_version_builds_with_todays_classes(compose_train):
    cfg = OmegaConf.to_container(compose_train(["likelihood=gaussian"]), resolve=True)
    cfg["likelihood"]["_target_"] = "vae_lightning.models.likelihoods.GaussianLikelihood"
    cfg["model"]["_target_"] = "vae_lightning.models.vae_module.VAE"
    rebuilt = checkpoint_config({CONFIG_KEY: cfg})
    assert rebuilt.likelihood._target_ == "vae_lightning.models.likelihoods.gaussian.GaussianLikelihood"
    assert rebuilt.model._target_ == "vae_lightning.models.vae.VAE"


def test_a_run_of_an_earlier_version_resumes_and_a_changed_component_is_still_refused(compose_train, tmp_path):
    cfg = compose_train([])
    saved = OmegaConf.to_container(cfg, resolve=True)
    saved["likelihood"]["_target_"] = "vae_lightning.models.likelihoods.BernoulliLikelihood"
    saved["model"]["prior"]["_target_"] = "vae_lightning.models.priors.StandardNormalPrior"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    check_unchanged(cfg, tmp_path)  # the same classes under their old names: no refusal
    saved["likelihood"]["_target_"] = "vae_lightning.models.likelihoods.GaussianLikelihood"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match="cannot change likelihood._target_"):
        check_unchanged(cfg, tmp_path)
