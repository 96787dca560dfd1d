"""Callbacks that record what the Trainer did, for tests that assert the effect of a Trainer flag (used through the
real CLI: ``+callbacks.record._target_=recorders.RecordSteps +callbacks.record.path=...`` with tests/ on
PYTHONPATH)."""

import json

import lightning as L
import torch


def gradient_norm(module: torch.nn.Module) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters() if p.grad is not None])))


class RecordSteps(L.Callback):
    """Writes to ``path`` (JSON): the training batches seen, the optimizer steps taken, the validations run, and
    each step's gradient norm before clipping (what ``on_before_optimizer_step`` sees: Lightning clips after it)
    and as the optimizer uses it (read inside the optimizer's closure, after Lightning's clipping)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.record = {"batches": 0, "validations": 0, "norms_before_clipping": [], "norms_used": []}

    def on_train_start(self, trainer, pl_module) -> None:
        (optimizer,) = trainer.optimizers
        step, record = optimizer.step, self.record["norms_used"]

        def measured_step(closure=None, **kwargs):
            def closure_then_measure():
                loss = closure()
                record.append(gradient_norm(pl_module))
                return loss

            return step(closure=closure_then_measure, **kwargs)

        optimizer.step = measured_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.record["batches"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.record["norms_before_clipping"].append(gradient_norm(pl_module))

    def on_validation_end(self, trainer, pl_module) -> None:
        self.record["validations"] += not trainer.sanity_checking

    def on_train_end(self, trainer, pl_module) -> None:
        self.record["optimizer_steps"] = trainer.global_step
        with open(self.path, "w") as file:
            json.dump(self.record, file)


class RecordOutputBias(L.Callback):
    """Writes the decoder's last-layer bias as training starts (after any checkpoint is restored) to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_start(self, trainer, pl_module) -> None:
        torch.save(pl_module.decoder.head.bias.detach().cpu().clone(), self.path)
