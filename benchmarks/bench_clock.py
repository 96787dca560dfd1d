"""A callback for `make bench`: when the first training step starts, and how long each epoch's training part
takes (validation excluded), written as JSON to ``path`` when training ends."""

import json
import time

import lightning as L


class TrainingClock(L.Callback):
    def __init__(self, path: str) -> None:
        self.path = path
        self.first_step: float | None = None
        self.epochs: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first_step is None:
            self.first_step = time.time()
        if batch_idx == 0:
            self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx + 1 == trainer.num_training_batches:
            self.epochs.append(time.perf_counter() - self._epoch_start)

    def on_train_end(self, trainer, pl_module) -> None:
        with open(self.path, "w") as file:
            json.dump({"first_step": self.first_step, "epochs": self.epochs}, file)


class StepProfiler(L.Callback):
    """cProfile of the training steps of epoch ``epoch`` only (no start-up, validation or test), to ``path``."""

    def __init__(self, path: str, epoch: int = 1) -> None:
        import cProfile

        self.path, self.epoch, self.profile = path, epoch, cProfile.Profile()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            self.profile.enable()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx + 1 == trainer.num_training_batches:
            self.profile.disable()
            self.profile.dump_stats(self.path)
