"""Figure 2: two real (tiny) runs collected into the loss-curve figure and the summary table."""

import json

import pytest

from rvq_jax.eval import compare
from rvq_jax.eval import report
from rvq_jax.eval import results
from tests.conftest import REPO
from tests.test_train import tiny_config


def test_compare_draws_the_pair_and_tabulates_every_run(fsdd_recordings, tmp_path):
  for name, levels in (("model1", 2), ("model5", 4)):
    config = tiny_config(fsdd_recordings, tmp_path / "cache")
    config.rvq.levels = levels
    config.train.num_steps = 3
    config.eval.num_audio = 2
    config.eval.num_figures = 0
    report.train_and_report(config, str(tmp_path / "runs" / name))
  figure, table = compare.compare(tmp_path / "runs", ["model1", "model3", "model5"],
                                  ["model1", "model5"])
  assert figure.stat().st_size > 20_000
  rows = table.read_text().splitlines()
  assert len(rows) == 4 and rows[2].startswith("| model1 | 1 | 3 |")
  assert rows[3].startswith("| model5 |") and "| 8.0 /" in rows[2] and "| 16.0 /" in rows[3]  # 1000 positions/s x L x 4 bits
  with pytest.raises(FileNotFoundError, match="model3"):
    compare.compare(tmp_path / "runs", ["model1"], ["model1", "model3"])

  # The results page is regenerated from the same workdirs.
  page = results.write_results(tmp_path / "runs", tmp_path / "docs" / "RESULTS.md").read_text()
  assert "### model1" in page and "Trained **1 of 2 epochs** (3 steps, batch 16)" in page
  assert "### model2\n\nNot run yet." in page and "Not trained yet" in page
  assert "cpu:" in page  # the device, from run_info.json
  for name in ("figure2_loss_curves.png", "model5_loss_curves.png"):
    assert (tmp_path / "docs" / "figures" / name).exists()
  # Several roots, searched in order: these runs, then the shipped records (classifier, model2).
  roots = f"{tmp_path / 'runs'},{REPO / 'pretrained'}"
  page = results.write_results(roots, tmp_path / "docs" / "RESULTS.md").read_text()
  assert "Trained **1 of 2 epochs** (3 steps, batch 16)" in page          # model1 from runs
  assert "### model2\n\nCOMMAND" in page and "| mu law 4 bit |" in page   # from pretrained/
  # The comparison table reads the test metrics of a run's eval.json (shipped model2 here).
  shipped = json.loads((REPO / "pretrained" / "model2" / "eval.json").read_text())["reconstruction"]
  row = compare.summary_table({"model2": REPO / "pretrained" / "model2"}).splitlines()[2]
  assert f"| {shipped['pesq_nb']:.2f} ({shipped['pesq_nb_corpus']:.2f}) |" in row
  assert f"| {shipped['stoi']:.3f} ({shipped['stoi_corpus']:.3f}) |" in row
  assert f"| {shipped['classifier_accuracy']:.3f} |" in row


def test_the_ablation_section_reads_the_kept_records():
  """docs/ablation/<row> (record-only exports) render as rows of the results page, each cell from
  that row's eval.json."""
  kept = results._ablation_section([REPO / "docs" / "ablation"])  # pylint: disable=protected-access
  rows = {line.split(" | ")[0][2:]: line for line in kept if line.startswith("| abl_")}
  assert rows and set(rows) <= set(results.ABLATION_RUNS)
  for name, line in rows.items():
    saved = json.loads((REPO / "docs" / "ablation" / name / "eval.json").read_text())
    rec, rd = saved["reconstruction"], saved["rate_distortion"]
    assert f"| {rec['pesq_nb']:.2f} ({rec['pesq_nb_corpus']:.2f}) |" in line
    assert f"| {rd[len(rd) // 2 - 1]['pesq_nb']:.2f} | {rd[0]['classifier_accuracy']:.3f} |" in line
    assert f"({min(saved['speech_codebook_perplexity']):.0f})" in line
