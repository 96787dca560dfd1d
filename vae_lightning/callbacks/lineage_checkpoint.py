"""Lightning's ``ModelCheckpoint``, which also knows the best checkpoint of the runs a resumed run continues."""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class LineageCheckpoint(ModelCheckpoint):
    """A run resumed from another run's checkpoint (``resume=``, ``ckpt_path=``) writes into a new folder, where
    Lightning forgets the earlier best. Here the earlier best is kept while its file exists: a new epoch is ``best``
    only if it beats the whole lineage, and the test pass uses the lineage's best, wherever it lives. Files
    outside this run's own checkpoint folder are never removed."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            return super().load_state_dict(state_dict)
        best = state_dict.get("best_model_path") or ""
        if best and Path(best).is_file() and state_dict.get("best_model_score") is not None:
            self.best_model_path, self.best_model_score = best, state_dict["best_model_score"]
            self.best_k_models = {best: state_dict["best_model_score"]}
            self.kth_best_model_path, self.kth_value = best, state_dict["best_model_score"]

    def _remove_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if Path(filepath).resolve().parent == Path(self.dirpath).resolve():
            super()._remove_checkpoint(trainer, filepath)
