"""OmegaConf resolvers used by the configs; registered before Hydra composes them."""

import secrets

from omegaconf import OmegaConf


def register_resolvers() -> None:
    # A random suffix makes run folders unique even for runs started in the same second.
    # Cached, so every use within one config gives the same value.
    if not OmegaConf.has_resolver("unique"):
        OmegaConf.register_new_resolver("unique", lambda: secrets.token_hex(3), use_cache=True)
