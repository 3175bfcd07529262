"""Figure 2: two real (tiny) runs collected into the loss-curve figure and the summary table."""

import json
import shutil

import numpy as np
import pytest

from rvq_jax import tasks
from rvq_jax.configs import ablation
from rvq_jax.configs import prior_ablation
from rvq_jax.eval import claims
from rvq_jax.eval import compare
from rvq_jax.eval import prior_sections
from rvq_jax.eval import record
from rvq_jax.eval import render
from rvq_jax.eval import results
from rvq_jax.eval import thresholds
from rvq_jax.eval import vqvae_sections
from tests.conftest import REPO
from tests.test_train import tiny_config


def test_compare_draws_the_pair_and_tabulates_every_run(fsdd_recordings, tmp_path):
  for name, levels in (("model1", 2), ("model5", 4)):
    config = tiny_config(fsdd_recordings, tmp_path / "cache")
    config.rvq.levels = levels
    config.train.num_steps = 3
    config.eval.num_audio = 2
    config.eval.num_figures = 0
    tasks.train_vqvae(config, str(tmp_path / "runs" / name))
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
  shipped = json.loads((REPO / "pretrained" / "model2" / "eval.json").read_text())["quality"][
      "reconstruction"]
  row = render.summary_table({"model2": render.read_run(REPO / "pretrained" / "model2")}
                             ).splitlines()[2]
  assert f"| {shipped['pesq_nb']:.2f} ({shipped['pesq_nb_corpus']:.2f}) |" in row
  assert f"| {shipped['stoi']:.3f} ({shipped['stoi_corpus']:.3f}) |" in row
  assert f"| {shipped['classifier_accuracy']:.3f} |" in row

  # --sections regenerates one section of a page and keeps the rest, hand-written text included.
  out = tmp_path / "docs" / "RESULTS.md"
  note = "A paragraph written by hand under model2."
  stale = page.replace("Trained **1 of 2 epochs**", "Trained **9 of 9 epochs**", 1).replace(
      "\n### model3", f"\n{note}\n\n### model3")
  out.write_text(stale)
  spliced = results.write_results(roots, out, sections=["model1"]).read_text()
  assert spliced == page.replace("\n### model3", f"\n{note}\n\n### model3")
  with pytest.raises(ValueError, match="unknown model9"):
    results.write_results(roots, out, sections=["model9"])


def test_the_ablation_section_reads_the_kept_records():
  """docs/ablation/<row> (record-only exports) render as rows of the results page, each cell from
  that row's eval.json."""
  kept = vqvae_sections.ablation_section([REPO / "docs" / "ablation"])
  rows = {line.split(" | ")[0][2:]: line for line in kept if line.startswith("| abl_")}
  assert rows and set(rows) <= {ablation.WORKDIR_PREFIX + row for row in ablation.ROWS}
  for name, line in rows.items():
    saved = json.loads((REPO / "docs" / "ablation" / name / "eval.json").read_text())
    rec, rd = saved["quality"]["reconstruction"], saved["rate_distortion"]
    assert f"| {rec['pesq_nb']:.2f} ({rec['pesq_nb_corpus']:.2f}) |" in line
    assert f"| {rd[len(rd) // 2 - 1]['pesq_nb']:.2f} | {rd[0]['classifier_accuracy']:.3f} |" in line
    assert f"({min(saved['codebook']['speech']['perplexity']):.0f})" in line


def _legacy_layout(result: dict, evaluated: bool) -> dict:
  """A schema-2 record laid out as eval.json was before the schema: all keys at the top level,
  'reconstruction' a loss after training and the full-rate quality row after evaluation."""
  loss, codebook = result["test"]["loss"], result["codebook"]
  old = {"step": result["step"], "split": "test", "examples": result["examples"],
         "loss": loss["total"], "commitment": loss["commitment"],
         "commitment_per_level": loss["commitment_per_level"],
         "reconstruction": loss["reconstruction"],
         "spectrogram_mse": result["test"]["spectrogram_mse"],
         "codebook_perplexity": codebook["perplexity"], "codebook_usage": codebook["usage"],
         "codebook_dead_codes": codebook["dead_codes"],
         "nominal_bits_per_second": codebook["nominal_bits_per_second"],
         "entropy_bits_per_second": codebook["entropy_bits_per_second"]}
  if evaluated:
    speech = codebook["speech"]
    old.update(speech_codebook_perplexity=speech["perplexity"], speech_codebook_usage=speech[
        "usage"], speech_position_fraction=speech["position_fraction"],
               reconstruction=result["quality"]["reconstruction"],
               classifier_accuracy_original=result["quality"]["original_classifier_accuracy"],
               baselines=result["quality"]["baselines"], rate_distortion=result["rate_distortion"])
  return old


def test_eval_json_written_before_the_schema_reads_as_schema_2(tmp_path):
  """A record of each older layout (after --mode=train, after --mode=evaluate) loads as the schema-2
  record, the converter rewrites it in place, and the renderers give the same page for both."""
  shipped = record.load(REPO / "pretrained" / "model6")
  assert shipped["schema"] == record.SCHEMA and "quality" in shipped
  trained = {k: v for k, v in shipped.items() if k not in ("quality", "rate_distortion")}
  trained["codebook"] = {k: v for k, v in shipped["codebook"].items() if k != "speech"}
  trained["test"] = dict(shipped["test"], loss=dict(shipped["test"]["loss"], reconstruction=0.0123))
  assert record.upgrade(_legacy_layout(trained, evaluated=False)) == trained
  # Evaluation overwrote the reconstruction loss in the old layout: it is missing, not invented.
  evaluated = dict(shipped, test=dict(shipped["test"], loss=dict(shipped["test"]["loss"],
                                                                 reconstruction=None)))
  path = tmp_path / "eval.json"
  path.write_text(json.dumps(_legacy_layout(evaluated, evaluated=True)))
  assert record.load(path) == evaluated
  record.main(["record", str(path)])
  assert json.loads(path.read_text()) == evaluated
  assert render.report_page("m", record.load(path)) == render.report_page("m", evaluated)
  with pytest.raises(ValueError, match="newer than this code"):
    record.upgrade({"schema": record.SCHEMA + 1})


def test_codec_targets_are_judged_from_the_shipped_record_and_render_per_recipe(tmp_path):
  """The codec targets of pretrained/model6, decided here from its eval.json with the issue's
  thresholds written out, agree with `codec_target_rows`; a recipe without a record is left out."""
  shipped = json.loads((REPO / "pretrained" / "model6" / "eval.json").read_text())
  rec, rd, codebook = (shipped["quality"]["reconstruction"], shipped["rate_distortion"],
                       shipped["codebook"])
  expected = [rec["classifier_accuracy"] >= 0.99 * shipped["quality"]["original_classifier_accuracy"],
              rec["pesq_nb"] >= 4.2, rec["stoi"] >= 0.98, rec["log_spectral_distance_db"] <= 2.5,
              all(u >= 0.99 for u in codebook["usage"]),
              all(p >= 128 for p in codebook["speech"]["perplexity"]),
              [r for r in rd if r["levels"] == len(rd) // 2][0]["pesq_nb"] >= 3.5,
              [r for r in rd if r["levels"] == 1][0]["classifier_accuracy"] >= 0.95]
  rows = vqvae_sections.codec_target_rows(record.load(REPO / "pretrained" / "model6"))
  assert [met for _, _, met in rows] == expected
  assert f"{rec['pesq_nb']:.2f}" in rows[1][1] and f"{rec['stoi']:.3f}" in rows[2][1]
  (tmp_path / "model6").symlink_to(REPO / "pretrained" / "model6")
  lines = vqvae_sections.codec_targets_section([tmp_path])
  assert lines[0].startswith("### ") and "model7" not in "\n".join(lines)
  assert len([line for line in lines if line.startswith("| ")]) == 1 + len(rows)
  assert sum(line.count("**met**") for line in lines) == sum(expected)
  assert vqvae_sections.codec_targets_section([tmp_path / "nothing"]) == []


def test_the_prior_ablation_section_reads_the_kept_records():
  """docs/ablation/prior_<row> (record-only exports of prior runs) render as rows of the results
  page: each run's bound once, then one line per scored sample setting, cells from its
  prior_eval.json."""
  kept = prior_sections.prior_ablation_section([REPO / "docs" / "ablation"])
  names = [line.split(" | ")[0][2:] for line in kept if line.startswith("| prior_")]
  assert names and set(names) <= {prior_ablation.WORKDIR_PREFIX + row for row in prior_ablation.ROWS}
  for name in names:
    saved = json.loads((REPO / "docs" / "ablation" / name / "prior_eval.json").read_text())
    start = next(i for i, line in enumerate(kept) if line.startswith(f"| {name} |"))
    block = kept[start:start + len(saved["samples"])]
    assert f"| {saved['bits_per_dim']['test']:.3f} |" in block[0]
    for line, row in zip(block, saved["samples"]):
      guided = f", guidance {row['guidance']:g}" if row.get("guidance") else ""
      assert f"| {row['temperature']}{guided} | {'yes' if row['snap'] else 'no'} | " in line
      assert f"| {row['inception_score']:.2f} | {row['frechet_distance']:.1f} |" in line
      if "requested_digit_accuracy" in row:    # conditional priors only
        assert f"| {row['requested_digit_accuracy']:.3f} (" in line


def test_bound_plateau_reads_the_shipped_priors_curve():
  """The "trained until the bound stops falling" verdict, on the shipped prior's own metrics:
  the best bound of the last window against the best before it, checked against a plain scan of
  the records; a still-falling curve (the first half of the same run) is not called a plateau."""
  records = [json.loads(line) for line in
             (REPO / "pretrained" / "prior" / "metrics.jsonl").read_text().splitlines()]
  plateau = prior_sections.bound_plateau(records, window=1000)
  last = max(r["step"] for r in records if r["split"] == "validation")
  before = after = float("inf")
  for r in records:
    if r["split"] == "validation":
      if r["step"] <= last - 1000:
        before = min(before, r["bits_per_dim"])
      else:
        after = min(after, r["bits_per_dim"])
  assert plateau == {"last_step": last, "best_before": before, "best_last": after,
                     "drop": before - after}
  # Early in training the bound falls by far more than the tolerance per 1,000 steps.
  early = [r for r in records if r["step"] <= 2500]
  assert prior_sections.bound_plateau(early, window=1000)["drop"] > 3 * thresholds.PLATEAU_TOLERANCE
  assert prior_sections.bound_plateau(early, window=1500) is None   # too short to tell


def _shipped_records(name):
  return [json.loads(line) for line in
          (REPO / "pretrained" / name / "metrics.jsonl").read_text().splitlines()]


def test_study_claims_are_decided_by_the_shipped_runs(tmp_path):
  """The study's claims on the shipped runs: model5's validation-loss rises against numpy's
  differences; the verdict turns when one epoch jumps by more than the tolerance; the Gaussian
  decoder comparison is per metric (swapping the runs flips every metric's verdict); a claim whose
  run is missing says which run it needs instead of a verdict."""
  records = _shipped_records("model5")
  losses = np.array([r["loss"] for r in records if r["split"] == "validation"])
  rises = claims.loss_rises(records)
  assert len(rises) == int((np.diff(losses) > 0).sum()) > 0
  assert claims.claim_falls(records)[1] == "yes"
  jumped = [dict(r) for r in records]
  val = [r for r in jumped if r["split"] == "validation"]
  val[50]["loss"] = val[49]["loss"] * (1 + 2 * thresholds.RISE_TOLERANCE)
  assert claims.claim_falls(jumped)[1] == "no"

  mse, gaussian = (record.load(REPO / "pretrained" / m) for m in ("model2", "model3"))
  evidence, verdict = claims.claim_gaussian(mse, gaussian)
  a, b = mse["quality"]["reconstruction"], gaussian["quality"]["reconstruction"]
  worse = sum([b["pesq_nb"] < a["pesq_nb"], b["stoi"] < a["stoi"],
               b["classifier_accuracy"] < a["classifier_accuracy"],
               b["log_spectral_distance_db"] > a["log_spectral_distance_db"]])
  assert verdict == {4: "yes", 0: "no"}.get(worse, f"partly ({worse} of 4)")
  assert claims.claim_gaussian(gaussian, mse)[1] == {4: "no", 0: "yes"}.get(
      4 - worse, f"partly ({4 - worse} of 4)")
  assert f"PESQ-nb {a['pesq_nb']:.2f} -> {b['pesq_nb']:.2f}" in evidence

  without_model1 = tmp_path / "pretrained"
  without_model1.mkdir()
  for run in (REPO / "pretrained").iterdir():
    if run.name != "model1":
      (without_model1 / run.name).symlink_to(run)
  lines = claims.study_claims_section([without_model1])
  model1_rows = [line for line in lines if "against model1" in line or "model1's" in line]
  assert len(model1_rows) == 2 and all("needs `runs/model1`" in line and "not measured" in line
                                       for line in model1_rows)
  assert any("model5's losses fall throughout" in line and line.endswith("| yes |")
             for line in lines)


def test_the_glorot_and_commitment_claims_read_the_validation_curves():
  """Glorot's gain is read at the last validation step both runs share (model2's curve against
  itself scaled: 5% lower is marginal, 20% lower is not, higher is no gain); model2's commitment
  rises over its first epochs while the reconstruction falls, as in the study's model1."""
  uniform = _shipped_records("model2")

  def scaled(factor):
    return [dict(r, loss=r["loss"] * factor) if r["split"] == "validation" else r
            for r in uniform]

  assert claims.claim_glorot(uniform, scaled(0.95))[1] == "yes"
  assert claims.claim_glorot(uniform, scaled(0.8))[1] == "no (more than marginal)"
  assert claims.claim_glorot(uniform, scaled(1.1))[1] == "no (Glorot is worse)"
  assert "(+5.0%)" in claims.claim_glorot(uniform, scaled(0.95))[0]
  val = [r for r in uniform if r["split"] == "validation"]
  evidence, verdict = claims.claim_commitment(uniform)
  assert verdict == ("yes" if max(r["commitment"] for r in val[:3]) > val[0]["commitment"]
                     and val[-1]["commitment"] > val[-1]["reconstruction"] else "no")


def test_the_prior_section_renders_both_fully_trained_priors(tmp_path):
  """The prior section from the kept records: the shipped prior and the model5 prior each get a
  section with their export command, the plateau verdict and a target table; every line's code
  spans are closed (an odd number of backticks breaks the page from there on)."""
  roots = [REPO / "pretrained", REPO / "docs" / "ablation"]
  lines = prior_sections.prior_section(roots, tmp_path)
  text = "\n".join(lines)
  for heading in ("### The shipped prior (`pretrained/prior`)",
                  "### The same prior on the study's model5"):
    assert heading in lines
  assert "--output=docs/ablation/prior_model5_plateau --weights=false` (the record only)" in text
  assert text.count("| memorised (closer to a training clip") == 2
  assert all(line.count("`") % 2 == 0 for line in lines), [
      line for line in lines if line.count("`") % 2]


def test_splice_replaces_a_section_through_its_subsections_only():
  """A section with subsections replaces everything to the next heading of its level; one without
  stops at the next heading of any level; a heading that is missing or repeated is an error."""
  page = "# R\n\n## A: old title\nold a\n### A1\nold a1\n## B\nb\n"
  assert results.splice(page, ["## A: new title", "new a", ""]) == (
      "# R\n\n## A: new title\nnew a\n\n### A1\nold a1\n## B\nb\n")
  assert results.splice(page, ["## A", "new a", "### A2", "x", ""]) == (
      "# R\n\n## A\nnew a\n### A2\nx\n\n## B\nb\n")
  assert results.splice(page, ["## B", "new b"]) == "# R\n\n## A: old title\nold a\n### A1\nold a1\n## B\nnew b"
  with pytest.raises(ValueError, match="0 sections headed '## C'"):
    results.splice(page, ["## C"])
  with pytest.raises(ValueError, match="2 sections"):
    results.splice(page + "## B\n", ["## B"])


def test_the_kept_sections_of_the_results_page_are_up_to_date(tmp_path):
  """The sections of docs/RESULTS.md that come from kept records (pretrained/, docs/ablation/, the
  figures and WAVs in docs/) are what the renderer makes of them today: a record added or changed,
  or a renderer changed, without regenerating the page (`--sections=...`) fails here."""
  page = (REPO / "docs" / "RESULTS.md").read_text()
  out = tmp_path / "docs" / "RESULTS.md"
  for kept in ("figures", "audio", "codec"):   # drawn and written by the runs, kept beside the page
    shutil.copytree(REPO / "docs" / kept, out.parent / kept)
  out.write_text(page)
  roots = f"{REPO / 'pretrained'},{REPO / 'docs' / 'ablation'}"
  kept = ["classifier", "models", "model1", "model2", "model3", "model4", "model5", "model6",
          "model7", "targets", "listening", "codec", "claims", "ablation", "prior"]
  fresh = results.write_results(roots, out, sections=kept).read_text()
  assert fresh.splitlines() == page.splitlines()


def test_the_anchor_section_shows_its_record_beside_the_shipped_flow():
  """docs/ablation/prior_anchor (the autoregressive anchor's record) renders with its likelihood,
  one ceiling table and target table per scored temperature, and the comparison with the
  shipped flow, every number read from the two prior_eval.json files."""
  lines = prior_sections.anchor_section([REPO / "pretrained", REPO / "docs" / "ablation"])
  anchor = json.loads((REPO / "docs" / "ablation" / prior_sections.ANCHOR /
                       "prior_eval.json").read_text())
  flow = json.loads((REPO / "pretrained" / "prior" / "prior_eval.json").read_text())
  text = "\n".join(lines)
  assert lines[0] == "### Autoregressive anchor"
  assert f"validation {anchor['bits_per_code']['validation']:.3f}" in text
  for row in anchor["samples"]:
    assert f"At T={row['temperature']} ({row['examples']} samples" in text
    second = row["by_scorer"]["second"]
    assert f"| anchor | T={row['temperature']} | {second['frechet_distance_matched']:.1f} (" in text
  shipped = prior_sections.shipped_setting(flow)["by_scorer"]["judge"]
  guidance = flow["sampling"].get("guidance")
  assert (f"| judge | flow (shipped prior) | T={flow['sampling']['temperature']}"
          + (f", guidance {guidance:g}" if guidance else "")
          + f" | {shipped['frechet_distance_matched']:.1f} (") in text
