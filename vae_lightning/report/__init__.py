"""Sweep reports: ``python -m vae_lightning.report SWEEP_DIR``, and the statistics over seeds they use."""
