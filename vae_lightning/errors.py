"""The failures a user can fix, each shown as one line (``error: ...``, exit code 2) without a traceback.

Kept free of heavy imports: the entry points need them before torch or Lightning are loaded.
"""

import errno

#: what a folder that cannot be written answers (as root too: a read-only file system)
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class ConfigError(ValueError):
    """A setting has a value that is not allowed."""


class DataSourceError(RuntimeError):
    """The requested data source is not available here."""


class DataIntegrityError(RuntimeError):
    """A data file is truncated, corrupted or does not match its companion file."""


class NonFiniteLossError(RuntimeError):
    """Training produced a non-finite loss term."""


class AfterTestError(RuntimeError):
    """A step after the test pass (pictures, Fréchet distance, final records) failed; the checkpoints and the
    test metrics are kept. Shown as one line, exit code 1, with the traceback in the run folder."""


#: an objective that estimates with the encoder's Gaussian, given something else (refused by the command line and
#: by the VAE built from Python)
SOURCE_ONLY_FOR = "data.source={source} is only for data.name={dataset} (the only data set it serves)"
NEEDS_DIAGONAL_POSTERIOR = ("{objective} (model.objective) needs q(z|x) to be the encoder's diagonal Gaussian: "
                            "model/posterior=diagonal_gaussian and one stochastic layer (no model/latents)")

#: M2 made of an objective that is not the ELBO (refused by the command line and by the VAE built from Python)
M2_NEEDS_ELBO = ("model/labels=semi_supervised (Kingma et al.'s M2) is not allowed with {objective} (model.objective); "
                 "its bounds are the ELBO's: model/objective=elbo or cyclical_elbo, without free bits")


#: the errors whose message says everything
USER_ERRORS = (ConfigError, DataSourceError, DataIntegrityError, NonFiniteLossError)
