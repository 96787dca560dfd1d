"""Two "nodes" on one host, started the ways users start them (by hand with NODE_RANK, and by torchrun): one run
folder written by global rank 0 only, no folder from the other node, and metrics equal to one process."""

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import run_module

pytestmark = pytest.mark.slow  # two processes of a real DDP run (gloo), then an evaluation

#: the README's first command on two one-process nodes, shortened only (every step after training on)
ARGS = ["likelihood=gaussian", "trainer.num_nodes=2", "trainer.devices=1", "trainer.max_epochs=1",
        "+trainer.limit_train_batches=5", "eval.k=5", "eval.fid_samples=100"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(how: str, node_rank: int, port: int, cwd) -> subprocess.Popen:
    env = {**os.environ, "WANDB_SILENT": "true"}
    if how == "env":
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", NODE_RANK=str(node_rank))
        command = [sys.executable, "-m", "vae_lightning.train", *ARGS]
    else:
        torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
        command = [torchrun, "--nnodes=2", f"--node_rank={node_rank}", "--nproc_per_node=1",
                   "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "vae_lightning.train", *ARGS]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("how", ["env", "torchrun"])
def test_two_nodes_write_one_run_folder_and_report_the_metrics_of_one_process(tmp_path, how):
    port = free_port()
    nodes = [launch(how, rank, port, tmp_path) for rank in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    (run,) = (tmp_path / "outputs" / "runs").iterdir()  # the other node made no folder of its own
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1] and "Run folder:" not in outputs[1]
    assert outputs[0].count("Run folder:") == 1
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    trained = json.loads((run / "metrics.json").read_text())["metrics"]
    assert list((run / "pictures").glob("*.png")) and list(run.glob("wandb/offline-run-*"))
    evaluated = run_module("vae_lightning.evaluate", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "eval.k=5",
                           "eval.fid_samples=100", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    (evaluation,) = (run / "evaluations").iterdir()
    one = json.loads((evaluation / "metrics.json").read_text())["metrics"]
    for name in ("val/loss", "val/kl", "test/loss", "test/recon", "test/kl", "test/active_units",
                 "test/frechet_distance", "test/frechet_distance_gmm"):
        assert trained[name] == pytest.approx(one[name], rel=1e-5), name
