"""vae-lightning: Variational Autoencoders on MNIST with PyTorch Lightning and Hydra."""


def load(source, device="cpu"):
    """A trained model from a run folder, a checkpoint or a downloaded W&B model artifact folder:
    ``vae = vae_lightning.load("outputs/runs/<run>")``, then ``vae.sample(64)``, ``vae.encode(x)``,
    ``vae.reconstruct(x)``, ``vae.log_likelihood(x, k=1000)`` (nats). See ``vae_lightning.trained_model``."""
    from vae_lightning.trained_model import load as load_trained  # torch is imported only when a model is loaded

    return load_trained(source, device)
