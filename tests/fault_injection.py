"""Callbacks that make real failures happen at a chosen training step (used through the real CLI:
``+callbacks.fault._target_=fault_injection.SendSignalAtStep`` with tests/ on PYTHONPATH)."""

import os
import signal
import time
from pathlib import Path

import lightning as L
import torch


class SendSignalAtStep(L.Callback):
    """Deliver a real signal (default SIGTERM) to this process when ``global_step`` reaches ``step``."""

    def __init__(self, step: int, signal_name: str = "SIGTERM") -> None:
        self.step, self.signal = step, getattr(signal, signal_name)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signal)


class PoisonWeightsAtStep(L.Callback):
    """Overwrite the encoder's output layer with NaN just before step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.encoder.head.weight.fill_(float("nan"))


class NaNDecoderBeforeValidation(L.Callback):
    """Overwrite the decoder's last parameter with NaN before the validation pass of epoch ``epoch``: training
    stays finite, validation does not."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            with torch.no_grad():
                list(pl_module.decoder.parameters())[-1].fill_(float("nan"))


class SendSignalInTestPass(L.Callback):
    """Deliver a real signal (default SIGTERM) to this process at the first batch of the test pass; with
    ``once_marker``, only if that file does not exist yet (it is made), so that a requeued job is not signalled
    again."""

    def __init__(self, signal_name: str = "SIGTERM", once_marker: str | None = None) -> None:
        self.signal = getattr(signal, signal_name)
        self.once_marker = Path(once_marker) if once_marker else None

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.once_marker is not None:
            if self.once_marker.exists():
                return
            self.once_marker.touch()
        os.kill(os.getpid(), self.signal)


class SleepEachStep(L.Callback):
    """Sleep ``seconds`` after every training batch: a run long enough in wall time, whatever the machine's speed
    (nothing it does changes the numbers)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        time.sleep(self.seconds)


class BreakFrechetDistance(L.Callback):
    """Make the Fréchet distance fail after the test pass, where a real failure would (torchmetrics' compute)."""

    def on_test_end(self, trainer, pl_module) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        def broken(metric):
            raise RuntimeError("injected failure in the Frechet distance")

        FrechetInceptionDistance.compute = broken
