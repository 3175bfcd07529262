"""What sampling and export write: a new folder each time (or one replaced whole, asked for),
samples drawn and scored batch by batch with the same scores as all at once, non-finite audio
counted as a defect, and temperatures outside the documented range refused."""

import json
import math
import shutil

import numpy as np
import pytest

from rvq_jax import errors
from rvq_jax import export
from rvq_jax import files
from rvq_jax import run_config
from rvq_jax.eval import prior_report
from rvq_jax.train import checkpoints
from rvq_jax.train import prior
from rvq_jax.train import prior_targets
from rvq_jax.train import validation
from tests.conftest import REPO

SHIPPED_PRIOR = REPO / "pretrained" / "prior"


def _small_sampling_config():
  config = run_config.saved_config(SHIPPED_PRIOR)
  config.sample.update(num_samples=14, batch_size=4, num_wavs=2, num_figures=1, grid_columns=0,
                       guidance=0.0)   # what is written and streamed, not how it is guided
  config.eval.second_classifier_workdir = None
  return config


def test_sample_never_overwrites_unasked_and_streams_the_same_scores(tmp_path):
  config = _small_sampling_config()
  out = tmp_path / "samples"
  first = prior_report.sample(config, str(SHIPPED_PRIOR), str(out))
  written = sorted(p.relative_to(out) for p in out.rglob("*"))
  assert len(list((out / "audio" / "samples").glob("*.wav"))) == 2
  assert [p.name for p in tmp_path.iterdir()] == ["samples"]          # no staging debris

  # The streamed scores are those of the whole set drawn and scored at once.
  run = prior_targets.load_vqvae(config, with_data=False)
  state = prior.restore_prior(config, str(SHIPPED_PRIOR), run.config)
  labels = prior_report.sample_labels(config, 14)
  _, specs = prior_report.draw_samples(
      config, state, prior_report.make_sampler(config, prior_targets.target_shape(config,
                                                                                  run.config)),
      prior_report.make_decoder(run, run.config.rvq.levels), labels, config.sample.temperature,
      config.sample.snap, seed_offset=1)
  whole = prior_report.Scorer(config, run).score(specs, labels)
  for key in ("inception_score", "requested_digit_accuracy", "near_silent_fraction", "examples"):
    assert first[key] == pytest.approx(whole[key], rel=1e-6), key

  (out / "notes.txt").write_text("mine")
  with pytest.raises(errors.ConfigError, match=r"samples is not empty .*--overwrite"):
    prior_report.sample(config, str(SHIPPED_PRIOR), str(out))
  assert (out / "notes.txt").read_text() == "mine"                   # untouched
  prior_report.sample(config, str(SHIPPED_PRIOR), str(out), overwrite=True)
  assert sorted(p.relative_to(out) for p in out.rglob("*")) == written   # replaced whole


def test_streaming_keeps_only_the_samples_it_shows():
  class Counting:
    def measure(self, spec):
      return {"judge": (np.ones((len(spec), 10)) / 10, np.zeros((len(spec), 3))),
              "near_silent": np.zeros(len(spec), bool), "clipped": np.zeros(len(spec), bool)}
  batches = ((np.full((5, 1), i), np.full((5, 2), i)) for i in range(40))   # 200 samples
  measured, latents, specs = prior_report.measure_streamed(Counting(), batches, keep=7)
  assert len(measured["judge"][0]) == 200 and len(latents) == len(specs) == 7
  np.testing.assert_array_equal(specs[:, 0], [0, 0, 0, 0, 0, 1, 1])


def test_non_finite_samples_count_as_clipped_never_as_fine():
  config = _small_sampling_config()
  scorer = prior_report.Scorer(config, prior_targets.load_vqvae(config, with_data=False))
  specs = np.zeros((3, 128, 128, 2), np.float32)
  specs[..., 0] = -2.0                       # quiet log-magnitudes
  specs[1, 5, 5, 0] = np.nan
  specs[2, 5, 5, 0] = np.inf
  quiet, clipped = scorer.quiet_and_clipped(specs)
  assert clipped.tolist() == [False, True, True]
  assert not quiet[1:].any()


@pytest.mark.parametrize("temperature", [0.0, -0.5, 2.5, math.nan, math.inf])
def test_temperatures_outside_the_documented_range_are_refused(temperature):
  config = run_config.saved_config(SHIPPED_PRIOR)
  config.sample.temperature = temperature
  with pytest.raises(errors.ConfigError, match=r"must be in \(0, 2\]"):
    validation.validate_config(config)


def test_export_refuses_a_used_folder_and_overwrite_replaces_it_whole(tmp_path):
  source = REPO / "docs" / "ablation" / "prior_base3k"
  out = tmp_path / "kept"
  export.export(None, str(source), str(out), weights=False)
  copied = sorted(p.name for p in out.iterdir())
  assert "config.json" in copied and "prior_eval.json" in copied
  (out / "report.md").write_text("a stale report of another run")
  with pytest.raises(errors.ConfigError, match="kept is not empty"):
    export.export(None, str(source), str(out), weights=False)
  assert (out / "report.md").exists()
  export.export(None, str(source), str(out), weights=False, overwrite=True)
  assert sorted(p.name for p in out.iterdir()) == copied               # nothing stale left
  assert [p.name for p in tmp_path.iterdir()] == ["kept"]


def test_a_failed_fill_leaves_the_old_folder_as_it_was(tmp_path):
  out = tmp_path / "results"
  out.mkdir()
  (out / "eval.json").write_text(json.dumps({"old": True}))
  with pytest.raises(RuntimeError):
    with files.new_folder(out, overwrite=True) as staging:
      (staging / "eval.json").write_text("{}")
      raise RuntimeError("killed half-way")
  assert json.loads((out / "eval.json").read_text()) == {"old": True}
  assert [p.name for p in tmp_path.iterdir()] == ["results"]
  shutil.rmtree(out)


def test_export_ships_the_commands_sampling_setting_and_never_what_was_trained(tmp_path):
  command = run_config.saved_config(SHIPPED_PRIOR)
  command.sample.temperature = 0.7
  command.sample.guidances = (0.0, 2.0)
  command.prior.hidden = 999               # a trained field: the command cannot change it
  export.export(command, str(SHIPPED_PRIOR), str(tmp_path / "as_sampled"))
  export.export(None, str(SHIPPED_PRIOR), str(tmp_path / "as_trained"))
  original = json.loads((SHIPPED_PRIOR / "config.json").read_text())
  assert json.loads((tmp_path / "as_trained" / "config.json").read_text()) == original
  shipped = json.loads((tmp_path / "as_sampled" / "config.json").read_text())
  assert shipped["sample"]["temperature"] == 0.7 and shipped["sample"]["guidances"] == [0.0, 2.0]
  assert shipped["prior"] == original["prior"]
  def trained(saved):   # every field but how the run is read (sampling, scorers)
    return {k: v for k, v in checkpoints.flatten(saved).items()
            if not k.startswith(("sample.", "eval.", "parallel.", "train.eval_batch_size"))}
  assert trained(shipped) == trained(original)
  # The sealed digest still holds: the exported folder reads, and samples at 0.7 by default.
  assert run_config.saved_config(tmp_path / "as_sampled").sample.temperature == 0.7
