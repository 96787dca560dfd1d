"""What configs of runs made by earlier versions say differently, so those runs still evaluate and resume.

Read where an earlier run's config comes back (a checkpoint's stored config, a run folder's ``config.yaml``);
never used to build anything new. Plain Python.
"""

from typing import Any

#: data settings of runs made before the likelihood declared its pixels: read back, never used
LEGACY_PIXEL_KEYS = ("binarize", "dequantize")

#: classes that moved when ``models/`` took the shape of ``conf/`` (old ``_target_`` -> new)
RENAMED_TARGETS = {
    "vae_lightning.models.vae_module.VAE":
        "vae_lightning.models.vae.VAE",
    "vae_lightning.models.likelihoods.BernoulliLikelihood":
        "vae_lightning.models.likelihoods.bernoulli.BernoulliLikelihood",
    "vae_lightning.models.likelihoods.GaussianLikelihood":
        "vae_lightning.models.likelihoods.gaussian.GaussianLikelihood",
    "vae_lightning.models.continuous_bernoulli.ContinuousBernoulliLikelihood":
        "vae_lightning.models.likelihoods.continuous_bernoulli.ContinuousBernoulliLikelihood",
    "vae_lightning.models.discretised_logistic.DiscretisedLogisticLikelihood":
        "vae_lightning.models.likelihoods.discretised_logistic.DiscretisedLogisticLikelihood",
    "vae_lightning.models.priors.StandardNormalPrior":
        "vae_lightning.models.priors.standard_normal.StandardNormalPrior",
    "vae_lightning.models.priors.GaussianMixturePrior":
        "vae_lightning.models.priors.mixture.GaussianMixturePrior",
    "vae_lightning.models.priors.VampPrior":
        "vae_lightning.models.priors.vamp.VampPrior",
    "vae_lightning.models.objectives.ELBO":
        "vae_lightning.models.objectives.elbo.ELBO",
    "vae_lightning.models.objectives.CyclicalKLELBO":
        "vae_lightning.models.objectives.cyclical_elbo.CyclicalKLELBO",
    "vae_lightning.models.objectives.BetaTCVAE":
        "vae_lightning.models.objectives.beta_tc.BetaTCVAE",
    "vae_lightning.models.objectives.IWAE":
        "vae_lightning.models.objectives.iwae.IWAE",
    "vae_lightning.models.networks.MLPEncoder":
        "vae_lightning.models.networks.mlp.MLPEncoder",
    "vae_lightning.models.networks.MLPDecoder":
        "vae_lightning.models.networks.mlp.MLPDecoder",
    "vae_lightning.models.networks.ConvEncoder":
        "vae_lightning.models.networks.conv.ConvEncoder",
    "vae_lightning.models.networks.ConvDecoder":
        "vae_lightning.models.networks.conv.ConvDecoder",
    "vae_lightning.callbacks.images.ImageGrids":
        "vae_lightning.callbacks.image_grids.ImageGrids",
    "vae_lightning.callbacks.interrupt.CheckpointOnInterrupt":
        "vae_lightning.callbacks.checkpoint_on_interrupt.CheckpointOnInterrupt",
}


def upgraded(config: Any) -> Any:
    """A plain config (dicts and lists) with every renamed ``_target_`` replaced by today's name."""
    if isinstance(config, dict):
        return {key: RENAMED_TARGETS.get(value, value) if key == "_target_" else upgraded(value)
                for key, value in config.items()}
    if isinstance(config, list):
        return [upgraded(item) for item in config]
    return config
