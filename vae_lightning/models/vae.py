"""The VAE as a LightningModule: minimises the negative ELBO per example, in nats."""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import lightning as L
import torch

from vae_lightning.console import log
from vae_lightning.errors import M2_NEEDS_ELBO, NEEDS_DIAGONAL_POSTERIOR, ConfigError
from vae_lightning.models.checkpoints import CONFIG_KEY, METRICS_KEY
from vae_lightning.models.gaussians import clamp_logvar
from vae_lightning.models.labels.base import GivenLabel, Labels
from vae_lightning.models.latents.base import Latents, LayeredPosterior, LayeredPrior, layer_kls
from vae_lightning.models.likelihoods.base import Likelihood
from vae_lightning.models.networks.base import Decoder, Encoder
from vae_lightning.models.objectives.base import (
    Objective,
    ObjectiveTerms,
    PosteriorSample,
    TrainingContext,
    kl_terms,
    run_shape,
)
from vae_lightning.models.objectives.elbo import ELBO
from vae_lightning.models.optimizer_settings import optimizers_for, reapply_configured_settings
from vae_lightning.models.pass_metrics import PassMetrics
from vae_lightning.models.posteriors.base import Posterior
from vae_lightning.models.posteriors.diagonal_gaussian import DiagonalGaussianPosterior
from vae_lightning.models.priors.base import Prior
from vae_lightning.models.priors.standard_normal import StandardNormalPrior
from vae_lightning.rules import Count, checked

# Epoch-level validation and test values are reduced exactly across DDP ranks before they are logged (sums and counts),
# so every rank holds the same number. Declared as synced with "max", which leaves equal values exact and
# stops Lightning recommending sync_dist=True for them.
ALREADY_REDUCED = {"sync_dist": True, "reduce_fx": "max"}


@checked
class VAE(L.LightningModule):
    """A composition of components, each chosen by config:

    * ``encoder`` + ``posterior``: q(z|x), the encoder's N(mu, diag exp(logvar)) or a flow after it
      (``model/encoder``, ``model/posterior``);
    * ``prior``: p(z) (``model/prior``; N(0, I) by default);
    * ``decoder`` + ``likelihood``: p(x|z) (``model/decoder``, ``likelihood``);
    * ``objective``: the training loss built from them (``model/objective``; the ELBO by default);
    * ``latents``: a second stochastic layer h2 above the encoder's h1 (``model/latents=two_layer``; none by
      default). Then z = [h1, h2], the posterior is q(h1|x) q(h2|h1), the prior p(h2) p(h1|h2), the decoder
      reads h1, and each layer's KL is logged as ``{stage}/kl_1`` and ``{stage}/kl_2``;
    * ``labels``: how the digit classes are used (``model/labels``; none by default): the class-conditional VAE
      or Kingma et al.'s semi-supervised M2. Then the encoder and decoder also read the one-hot label.

    This class does the plumbing: training, validation and test steps, metrics, checkpoints.
    Logged (nats per example): ``{stage}/recon`` = -log p(x|z) at a posterior sample, ``{stage}/kl`` =
    KL(q || p) (closed form when the prior has one, else a one-sample estimate), ``{stage}/elbo`` =
    -(recon + kl), ``train/loss`` = the objective; ``val/loss`` and ``test/loss`` are the negative ELBO
    whatever the training objective, so runs with different objectives compare on one scale.
    """

    config_section = "model"

    def __init__(
        self,
        encoder: Callable[..., Encoder],
        decoder: Callable[..., Decoder],
        likelihood: Likelihood,
        image_shape: Sequence[int] = (1, 28, 28),
        latent_dim: Count = 20,
        prior: Callable[..., Prior] = StandardNormalPrior,
        posterior: Callable[..., Posterior] = DiagonalGaussianPosterior,
        objective: Objective | None = None,
        latents: Callable[..., Latents] | None = None,
        labels: Callable[..., Labels] | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] = partial(torch.optim.Adam, lr=1e-3),
        scheduler: Callable[..., Any] | None = None,
        iw_samples: Count = 100,
        iw_chunk_elements: Count = 4096,
        output_bias_from_data: bool = True,
    ) -> None:
        super().__init__()
        image_shape = tuple(int(size) for size in image_shape)  # plain ints: checkpoints load weights-only
        self.save_hyperparameters(
            ignore=["encoder", "decoder", "likelihood", "prior", "posterior", "objective", "latents", "labels",
                    "optimizer", "scheduler"])
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.labels = None if labels is None else labels(image_shape=self.image_shape)
        with_labels = {"label_dim": self.labels.n_classes} if self.labels is not None else {}
        self.encoder = encoder(image_shape=self.image_shape, latent_dim=latent_dim, **with_labels)
        self.decoder = decoder(
            image_shape=self.image_shape,
            latent_dim=latent_dim,
            out_channels=self.image_shape[0] * likelihood.params_per_pixel,
            **with_labels,
        )
        if latents is None:
            self.prior = prior(latent_dim=latent_dim, encode=self.encode)
            self.posterior = posterior(latent_dim=latent_dim)
        else:
            layers = latents(latent_dim=latent_dim)
            self.posterior = LayeredPosterior(posterior(latent_dim=latent_dim), layers)
            self.prior = LayeredPrior(prior(latent_dim=layers.units, encode=self.encode_top), layers.generate, latent_dim)
        self.objective = objective or ELBO()
        if self.objective.needs_diagonal_posterior and not self.posterior.diagonal:
            raise ConfigError(NEEDS_DIAGONAL_POSTERIOR.format(objective=type(self.objective).__name__))
        if self.labels is not None and self.labels.semi_supervised and not (
                self.objective.kl_weighted and not getattr(self.objective, "free_bits", 0)):
            raise ConfigError(M2_NEEDS_ELBO.format(objective=type(self.objective).__name__))
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.iw_samples = iw_samples
        self.iw_chunk_elements = iw_chunk_elements
        self.output_bias_from_data = output_bias_from_data
        self.run_config: dict[str, Any] | None = None  # the resolved Hydra config, stored in checkpoints
        self.pass_metrics = PassMetrics(self.posterior.latent_dim)
        # the fixed part of the objective's TrainingContext, set when training starts
        self._run_shape: dict[str, int] = {}

    # ----------------------------------------------------------------------------------------------
    # The model
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the encoder's Gaussian; ``y`` (B, K): one-hot labels, for a model with labels."""
        mu, logvar = self.encoder(x, y) if self.labels is not None else self.encoder(x)
        return mu, clamp_logvar(logvar)

    def encode_top(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(h2|h1) at h1 = the encoder's mean: what a prior of h2 defined through the
        encoder (the VampPrior) encodes its pseudo-inputs with."""
        return self.posterior.upper(self.encode(x)[0])

    @property
    def layered(self) -> bool:
        return isinstance(self.posterior, LayeredPosterior)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Raw likelihood parameters for latents of shape (..., latent_dim) (with two layers: h1, the first
        ``latent_dim`` entries of z); ``y`` (B, K): one-hot labels, for a model with labels."""
        h1 = z[..., : self.latent_dim]
        return self.decoder(h1, y) if self.labels is not None else self.decoder(h1)

    def given(self, y: torch.Tensor) -> GivenLabel:
        """The model at the class indices ``y`` (B,): q(z|x, y) and p(x|y, z) for objectives and estimates."""
        return GivenLabel(self, self.labels.one_hot(y))

    def sample_posterior(self, x: torch.Tensor, n_samples: int = 1, eps: torch.Tensor | None = None,
                       y: torch.Tensor | None = None) -> PosteriorSample:
        """The encoder's Gaussian, ``n_samples`` reparameterised draws from q(z|x) per example with their
        log q(z|x) (``eps`` of shape (n_samples, B, D) fixes the noise), and log p(x|z) for each draw; ``y``
        (B, K): one-hot labels, for a model with labels."""
        mu, logvar = self.encode(x, y)
        if eps is None:
            eps = torch.randn((n_samples, len(mu), self.posterior.latent_dim), dtype=mu.dtype, device=mu.device)
        z, log_q = self.posterior(mu, logvar, eps)
        return PosteriorSample(mu=mu, logvar=logvar, z=z, log_q=log_q,
                            log_px_z=self.likelihood.log_prob(self.decode(z, y), x))

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        """One-sample ELBO terms per example: recon = -log p(x|z), kl, kl per dimension (None when the prior
        has no closed-form KL) and the posterior mean mu (with two layers also kl_1 and kl_2, and mu is
        [E[h1|x], the mean of q(h2|h1) at h1 = E[h1|x]]). ``eps`` (B, width of z) fixes the noise (validation and
        test); by default it is drawn. A model with labels takes the class indices ``y`` (B,): the terms of
        -log p(x|y) at the given labels."""
        y = None if self.labels is None or y is None else self.labels.one_hot(y)
        sample = self.sample_posterior(x, eps=None if eps is None else eps.unsqueeze(0), y=y)
        kl, kl_per_dim = kl_terms(self, sample)
        out = {"recon": -sample.log_px_z[0], "kl": kl, "kl_per_dim": kl_per_dim, "mu": sample.mu}
        if self.layered:
            out["kl_1"], out["kl_2"] = layer_kls(self.posterior, self.prior, sample.z[0], kl)
            out["mu"] = torch.cat([sample.mu, self.posterior.upper(sample.mu)[0]], dim=-1)
        return out

    def init_output_from_data(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Start the decoder's output bias where the likelihood's mean is the training images' ``mean`` (C, H, W),
        with any learned scale from their per-pixel ``std``: Burda et al.'s and Kingma's start (the logit of the
        mean pixel, for Bernoulli), without which the first epochs collapse the posterior."""
        self.decoder.set_output_bias(self.likelihood.output_bias(mean, std).to(self.device))

    @torch.no_grad()
    def sample_images(self, n: int, mean: bool = True, generator: torch.Generator | None = None,
                      label: int | None = None) -> torch.Tensor:
        """n images decoded from z ~ p(z): the likelihood's mean (default) or a draw from it. A model with labels
        draws each image's class from the uniform p(y), or decodes them all as class ``label``."""
        z = self.prior.sample(n, generator=generator)
        return self.decode_images(z, mean=mean, y=self.draw_labels(n, generator, label))

    def draw_labels(self, n: int, generator: torch.Generator | None = None, label: int | None = None
                    ) -> torch.Tensor | None:
        """n class indices for decoding: all ``label``, or drawn from the uniform p(y); None without labels."""
        if self.labels is None:
            return None
        if label is not None:
            return torch.full((n,), label, dtype=torch.long)
        return torch.randint(self.labels.n_classes, (n,), generator=generator, device=getattr(generator, "device", None))

    @torch.no_grad()
    def decode_images(self, z: torch.Tensor, mean: bool = True, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images decoded from latents z (n, D): the likelihood's mean (default) or a draw from it; ``y`` (n,):
        the class indices, for a model with labels (None: the uniform label vector)."""
        y = None if y is None else self.labels.one_hot(y.to(self.device))
        params = self.decode(z.to(self.device), y)
        return self.likelihood.mean(params) if mean else self.likelihood.sample(params)

    # ----------------------------------------------------------------------------------------------
    # Training
    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> dict[str, torch.Tensor]:
        """The objective's loss; per-example ``recon`` and ``kl`` (detached) go to the callbacks, where the
        non-finite guard reads them at its own cadence."""
        x = batch[0]
        context = TrainingContext(step=self.global_step, epoch=self.current_epoch, **self._run_shape)
        if self.labels is not None:
            terms = self.labels.training_terms(self, x, batch[1], context)
        else:
            terms = self.objective(self, x, context)
        if self.trainer.is_last_batch or (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self._log_training_terms(terms, x)
        return {"loss": terms.loss, "recon": terms.recon.detach(), "kl": terms.kl.detach()}

    def _log_training_terms(self, terms: ObjectiveTerms, x: torch.Tensor) -> None:
        """On the steps the loggers write and at each epoch's end only: ``self.log`` costs more than a small
        step (``docs/speed.md``)."""
        recon, kl = terms.recon.detach().mean(), terms.kl.detach().mean()
        self.log("train/loss", terms.loss.detach(), prog_bar=True)
        self.log_dict({"train/recon": recon, "train/kl": kl, "train/elbo": -(recon + kl)})
        if self.layered:  # each layer's KL, on a fresh draw
            with torch.no_grad():
                out = self(x)
            self.log_dict({"train/kl_1": out["kl_1"].mean(), "train/kl_2": out["kl_2"].mean()})

    def on_train_start(self) -> None:
        """The run's shape for the objective's context; and after a checkpoint is restored, its optimizer trains
        with this run's configured settings."""
        self._run_shape = run_shape(self.trainer)
        changed = reapply_configured_settings(self.trainer, dict(getattr(self.optimizer_factory, "keywords", {})))
        if changed:
            log.info("optimizer settings from this run's config, not the checkpoint's: %s", "; ".join(changed))

    def configure_optimizers(self) -> Any:
        return optimizers_for(self.parameters(), self.optimizer_factory, self.scheduler_factory)

    # ----------------------------------------------------------------------------------------------
    # Validation and test (models/pass_metrics.py)
    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.pass_metrics.update(self, batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.pass_metrics.update(self, batch, "test")

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.pass_metrics.results("val"), prog_bar=True, **ALREADY_REDUCED)

    def on_test_epoch_end(self) -> None:
        loaders = self.trainer.test_dataloaders
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        n_examples = sum(len(loader.dataset) for loader in loaders)  # the examples' indices are 0..n-1
        metrics, self.test_details = self.pass_metrics.test_results(
            self, n_examples, lambda value: self.trainer.strategy.reduce(value, reduce_op="sum"))
        self.log_dict(metrics, **ALREADY_REDUCED)

    # ----------------------------------------------------------------------------------------------
    # Checkpoints carry the resolved config so a checkpoint alone rebuilds its model.
    # The random state is saved too: a run resumed mid-epoch draws the same noise as one never stopped.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        checkpoint[METRICS_KEY] = {name: float(value) for name, value in self.trainer.callback_metrics.items()
                                   if value.numel() == 1 and not name.endswith("_step")}
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        if torch.cuda.is_available():
            checkpoint["cuda_rng_states"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.run_config = checkpoint.get(CONFIG_KEY, self.run_config)
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
        if "cuda_rng_states" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng_states"])
