"""Experiment tracking: the loggers (W&B, TensorBoard) and what a W&B run holds beyond the metrics."""
