"""docs/load_a_trained_model.ipynb runs from top to bottom after a short training run, in a fresh folder."""


import nbformat
import pytest
from conftest import ROOT, run_module
from nbclient import NotebookClient

NOTEBOOK = ROOT / "docs" / "load_a_trained_model.ipynb"
pytestmark = pytest.mark.slow  # a short run, then a kernel: about 20 s (CI runs it)


def test_the_notebook_runs_and_shows_its_pictures(tmp_path):
    trained = run_module("vae_lightning.train", "debug=fast", "logger=local", "eval.fid_samples=0", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 5  # samples, test digits, reconstructions, the least likely, the latent means
    text = "".join(output.get("text", "") for output in outputs)
    assert "mean log p(x) over 500 test digits: -" in text and " nats" in text
    assert "TrainedVAE(" in str(notebook.cells[1].outputs[0]["data"]["text/plain"])
