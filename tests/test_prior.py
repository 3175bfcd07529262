"""The RealNVP prior's targets, steps, parallel modes and its train -> sample -> score pipeline,
on latents of a tiny VQ-VAE trained on the real FSDD."""

import functools
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from rvq_jax import export
from rvq_jax import tasks
from rvq_jax.configs import realnvp as realnvp_config
from rvq_jax.eval import prior_sections
from rvq_jax.eval import results as results_page
from rvq_jax.models import realnvp
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import prior
from rvq_jax.train import prior_steps
from rvq_jax.train import prior_targets
from rvq_jax.train import validation
from rvq_jax.train import vqvae as vqvae_train
from tests.conftest import REPO
from tests.conftest import SHIPPED_CLASSIFIER
from tests.test_train import tiny_config


@pytest.fixture(scope="module")
def vqvae_dir(fsdd_recordings, tmp_path_factory):
  cache = tmp_path_factory.mktemp("cache")
  config = tiny_config(fsdd_recordings, cache)
  config.train.num_steps = 8
  workdir = tmp_path_factory.mktemp("vqvae")
  vqvae_train.train(config, str(workdir))
  return workdir, cache


def tiny_prior_config(vqvae_dir, fsdd_recordings):
  workdir, cache = vqvae_dir
  config = realnvp_config.get_config()
  config.vqvae_workdir = str(workdir)
  config.data.data_dir = str(fsdd_recordings)
  config.data.cache_dir = str(cache)
  config.eval.classifier_workdir = str(SHIPPED_CLASSIFIER)
  config.target.projection_dim = 4
  config.prior.hidden, config.prior.res_blocks = 8, 1
  config.prior.label_conditioning = True   # the digit in the couplings too: every path sees it
  config.train.batch_size = 16
  config.train.progress_bar = False
  config.train.checkpoint_every_steps = 20
  config.parallel.mode = "jit"
  config.sample.num_samples = 40
  config.sample.batch_size = 20
  config.sample.num_wavs = 10
  config.sample.num_figures = 1
  config.sample.temperatures = (config.sample.temperature,)   # the setting --mode=sample uses
  config.sample.guidances = (config.sample.guidance,)
  config.sample.snap_settings = (False, True)
  return config


def test_latent_spacing_of_a_lattice():
  rng = np.random.default_rng(0)
  lattice = 0.5 * rng.integers(-3, 4, size=(5000, 3)).astype(np.float32)   # spacing 0.5
  lattice = np.concatenate([lattice, lattice[:2000]])                       # exact duplicates
  spacing = prior_targets.latent_spacing(lattice.reshape(-1, 10, 10, 3)[:70], 300, 3000, seed=0)
  assert spacing == pytest.approx(0.5 / np.sqrt(3), rel=1e-6)


def test_projection_is_pca():
  rng = np.random.default_rng(1)
  x = (rng.standard_normal((4000, 5)) * [5.0, 3.0, 1.0, 0.1, 0.01]) @ np.linalg.qr(
      rng.standard_normal((5, 5)))[0] + 2.0
  center, basis, kept = prior_targets.fit_projection(x.astype(np.float32), 2)
  _, singular, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
  np.testing.assert_allclose(np.abs(basis.T @ vt[:2].T), np.eye(2), atol=1e-4)   # same subspace
  assert kept == pytest.approx((singular[:2]**2).sum() / (singular**2).sum(), rel=1e-5)
  full_center, full_basis, _ = prior_targets.fit_projection(x.astype(np.float32), 5)
  np.testing.assert_allclose(prior_targets.unproject(prior_targets.project(x, full_center, full_basis),
                                             full_center, full_basis), x, atol=1e-4)


def _toy_state_and_batches(config, shape=(8, 8, 4), steps=5, batch=16):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((steps * batch,) + shape).astype(np.float32) * 2 + 1
  labels = rng.integers(0, 10, steps * batch).astype(np.int32)
  stats = {"mean": np.ones(shape[-1], np.float32), "std": np.full(shape[-1], 2.0, np.float32),
           "noise_std": np.float32(0.1), "cell_width": np.float32(0.1 * np.sqrt(12))}
  state = prior_steps.create_prior_state(config, jax.random.key_data(jax.random.key(0)), stats,
                                   (jnp.asarray(x[:batch]), jnp.asarray(labels[:batch])))
  batches = [(jnp.asarray(x[i * batch:(i + 1) * batch]), jnp.asarray(labels[i * batch:(i + 1) *
                                                                           batch]))
             for i in range(steps)]
  return state, batches


def test_prior_step_pmap_and_sharded_equal_one_device():
  assert jax.device_count() == 8
  config = realnvp_config.get_config()
  config.prior.hidden, config.prior.res_blocks = 8, 1
  config.prior.label_conditioning = True   # the digit in the couplings too: every path sees it
  config.prior.label_dropout = 0.3         # and dropped labels (classifier-free guidance)
  config.optim.warmup_steps = 2
  shape = (8, 8, 4)
  state0, batches = _toy_state_and_batches(config, shape)
  results = {}
  for mode in ("jit", "pmap", "sharded"):
    config.parallel.mode = mode
    parallel = parallel_lib.Parallel(config)
    step = parallel.train_step(functools.partial(prior_steps.make_prior_train_step, config, shape))
    state = parallel.create_state(lambda: jax.tree.map(jnp.copy, state0))
    for b in batches:
      state, metrics = step(state, parallel.shard_batch(b))
    assert np.isfinite(float(metrics["bits_per_dim"]))
    results[mode] = state
  # Dropped labels train the "no digit" row of the class base (drawn for the global batch,
  # so every mode drops the same ones).
  null = realnvp.NULL_LABEL
  loc0, loc = (s.params["params"]["class_loc"][null] for s in (state0, results["jit"]))
  assert float(jnp.abs(loc - loc0).max()) > 0
  for mode in ("pmap", "sharded"):
    assert int(results[mode].step) == 5
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
                 (results["jit"].params, results["jit"].opt_state),
                 (results[mode].params, results[mode].opt_state))


def test_prior_trains_samples_scores_and_resumes(vqvae_dir, fsdd_recordings, tmp_path):
  config = tiny_prior_config(vqvae_dir, fsdd_recordings)
  config.train.num_steps = 60
  # The same classifier as the second scorer: its 'by_scorer' scores must equal the judge's.
  config.eval.second_classifier_workdir = str(SHIPPED_CLASSIFIER)
  workdir = tmp_path / "prior"
  result = tasks.train_prior(config, str(workdir))

  # It learned: held-out bits/dim fell well below the initial flow's.
  run = prior_targets.load_vqvae(config)
  targets = prior_targets.prepare_targets(config, run)
  assert targets.shape == (32, 32, 4) and targets.splits["train"][0].shape[0] == 2389
  x, labels = targets.splits["train"]
  init = prior_steps.create_prior_state(config, jax.random.key_data(jax.random.key(config.seed)),
                                  targets.stats, (jnp.asarray(x[:16]), jnp.asarray(labels[:16])))
  eval_step = jax.jit(prior_steps.make_prior_eval_step(config, targets.shape))
  test_x = prior_targets.fixed_noise_targets(config, targets, "test")
  initial = prior_steps.evaluate_bits_per_dim(eval_step, init, test_x, targets.splits["test"][1], 64)
  assert result["bits_per_dim"]["test"] < initial - 0.1
  assert result["target"]["noise_std"] == pytest.approx(
      config.target.dequantization * result["target"]["spacing"])

  # Scores: shapes and sanity; decoded real latents recognised far above chance. The flow was
  # trained with dropped labels, so it is also sampled without a digit (class shares only).
  *conditional, free = result["samples"]
  assert len(conditional) == 2 and {r["snap"] for r in conditional} == {False, True}
  assert free["unconditional"] and "requested_digit_accuracy" not in free
  assert free["examples"] == 40 and sum(free["class_histogram"]) == pytest.approx(1.0)
  assert prior_sections.unconditional_setting(result) is free
  for row in conditional:
    assert row["examples"] == 40 and 1.0 <= row["inception_score"] <= 10.0
    np.testing.assert_allclose(sum(row["class_histogram"]), 1.0)
    assert 0.0 <= row["requested_digit_accuracy"] <= 1.0
    assert row["memorization"]["median_nearest_train_distance"] > 0
  assert result["references"]["real_test"]["requested_digit_accuracy"] > 0.5
  # Two scorers (the same one twice here), the ceiling and the size-matched real reference.
  refs = result["references"]
  assert refs["ceiling"]["examples"] == refs["real_heldout"]["examples"] == 296
  assert refs["real_heldout"]["frechet_distance_matched"] == pytest.approx(
      refs["real_heldout"]["frechet_distance"], rel=1e-4)   # one chunk: the whole set
  for row in conditional + list(refs.values()):
    judge_scores, second = row["by_scorer"]["judge"], row["by_scorer"]["second"]
    for key in ("inception_score", "frechet_distance_matched", "mean_top_probability",
                "requested_digit_accuracy"):
      assert second[key] == pytest.approx(judge_scores[key], rel=1e-5), key
  for row in result["samples"]:   # 40 samples, fewer than the 296 of a matched chunk: all of them
    assert row["frechet_distance_matched"] == pytest.approx(row["frechet_distance"], rel=1e-4)
  wavs = sorted((workdir / "audio" / "samples").glob("*_sample_*.wav"))
  assert len(wavs) == 10 and wavs[0].name == "0_sample_0.wav"
  audio_data, rate = sf.read(wavs[0])
  assert rate == 8000 and len(audio_data) == 8192 and np.abs(audio_data).max() > 0
  assert (workdir / "figures" / "figure3_sample_0.png").stat().st_size > 10_000
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {r["split"] for r in records} == {"train", "validation", "test"}

  # Per requested digit (4 samples each here), consistent with the overall share.
  for row in conditional:
    per_digit = row["requested_digit_accuracy_per_digit"]
    assert len(per_digit) == 10 and np.mean(per_digit) == pytest.approx(
        row["requested_digit_accuracy"])
    # What each requested digit was heard as, against the other fields computed from the same
    # classifier outputs: rows of 4, the diagonal is the accuracy, columns the class histogram.
    counts = np.array(row["requested_heard_counts"])
    assert counts.shape == (10, 10) and (counts.sum(1) == 4).all()
    np.testing.assert_allclose(np.diag(counts) / 4, per_digit)
    np.testing.assert_allclose(counts.sum(0) / 40, row["class_histogram"])
    assert np.mean(row["near_silent_fraction_per_digit"]) == pytest.approx(
        row["near_silent_fraction"])
  assert (workdir / "figures" / "class_grid.png").stat().st_size > 10_000

  # The results page shows the run as the shipped prior: its targets, every setting, the figures.
  root = tmp_path / "runs"
  root.mkdir()
  (root / prior_sections.SHIPPED_PRIOR).symlink_to(workdir)
  page = results_page.write_results(root, tmp_path / "docs" / "RESULTS.md").read_text()
  shown = prior_sections.shipped_setting(result)
  assert shown["temperature"] == config.sample.temperature and shown["snap"] == config.sample.snap
  assert "### The shipped prior" in page and f"| {shown['inception_score']:.2f} | " in page
  targets = prior_sections.prior_target_rows(result, shown)
  assert len(targets) == 6 and all(f"| {name} | {value} |" in page for name, value, _ in targets)
  assert (shown["inception_score"] >= 0.8 * result["references"]["real_test"]["inception_score"]
          ) == targets[0][2]
  ceiling_rows = prior_sections.ceiling_target_rows(result, shown)
  assert len(ceiling_rows) == 6 and all(f"| {name} | {value} |" in page
                                        for name, value, _ in ceiling_rows)
  shares = [met for name, _, met in ceiling_rows if name.startswith("unconditional class shares")]
  assert shares == [all(0.08 <= share <= 0.12 for share in free["class_histogram"])]
  share = min(shown["by_scorer"][n]["inception_score"]
              / refs["ceiling"]["by_scorer"][n]["inception_score"] for n in ("judge", "second"))
  assert ceiling_rows[0][2] == (share >= 0.85)
  for name in ("prior_figure3_sample_0.png", "prior_class_grid.png"):
    assert (tmp_path / "docs" / "figures" / name).exists()

  # Resume: a longer run continues from the checkpoint instead of starting again.
  config.train.num_steps = 70
  state, _, _ = prior.train_prior(config, str(workdir), run)
  assert int(state.step) == 70
  steps = [r["step"] for r in (json.loads(line) for line in
                               (workdir / "metrics.jsonl").read_text().splitlines())]
  assert steps == sorted(steps) and steps[-1] == 70

  # Shipped weights (parameters and target-space constants, no optimizer state) restore exactly.
  shipped = tmp_path / "shipped_prior"
  export.export(config, str(workdir), str(shipped))
  restored = prior.restore_prior(config, str(shipped), run.config)
  jax.tree.map(np.testing.assert_array_equal, (state.params, state.stats),
               (restored.params, restored.stats))
  assert (shipped / "prior_eval.json").exists()

  # The front door samples one digit from the shipped prior with a bare config: the flow and its
  # target space come from the prior's config.json, not from the command line; the samples go to
  # --output and the prior's folder is left as it was.
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  args = [f"--config.{k}={v}" for k, v in (
      ("data.data_dir", config.data.data_dir), ("data.cache_dir", config.data.cache_dir),
      ("eval.classifier_workdir", config.eval.classifier_workdir), ("sample.num_samples", 20),
      ("sample.batch_size", 20), ("sample.num_wavs", 3), ("sample.num_figures", 0),
      ("sample.digit", 7))]
  before = sorted(p.relative_to(shipped) for p in shipped.rglob("*"))
  sampled = tmp_path / "sevens"
  out = subprocess.run([sys.executable, "-m", "rvq_jax.main", "--config=configs/realnvp.py",
                        f"--workdir={shipped}", "--mode=sample", f"--output={sampled}"] + args,
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert sorted(p.relative_to(shipped) for p in shipped.rglob("*")) == before
  names = {p.name for p in (sampled / "audio" / "samples").glob("7_sample_*.wav")}
  assert {"7_sample_0.wav", "7_sample_1.wav", "7_sample_2.wav"} <= names
  samples = json.loads((sampled / "samples.json").read_text())
  assert samples["digit"] == 7 and samples["examples"] == 20


def test_bad_prior_configs_fail_before_compiling(tmp_path):
  cases = [
      (lambda c: setattr(c.prior, "base", "flow"), "prior.base"),
      (lambda c: setattr(c.target, "kind", "codes"), "target.kind"),
      (lambda c: c.update({"prior": dict(base="gaussian", label_conditioning=False,
                                         label_dropout=0.0),
                           "sample": dict(digit=7, guidance=0.0, guidances=(0.0,))}),
       "sample.digit needs a conditional prior"),
      (lambda c: setattr(c.train, "batch_size", 12), "train.batch_size=12 is not divisible"),
      (lambda c: c.update({"prior": dict(label_dropout=0.0), "sample": dict(guidance=1.0)}),
       "needs a flow trained with prior.label_drop"),
      (lambda c: c.update({"prior": dict(base="gaussian", label_conditioning=False,
                                         label_dropout=0.1), "sample": dict(guidance=0.0)}),
       "label_dropout > 0 .* needs a conditional prior"),
      (lambda c: c.update({"prior": dict(label_dropout=1.0)}), "label_dropout=1.0 must be in"),
  ]
  for mutate, message in cases:
    config = realnvp_config.get_config()
    mutate(config)
    with pytest.raises(ValueError, match=message):
      validation.validate_config(config, num_devices=8)
  config = realnvp_config.get_config()
  config.vqvae_workdir = str(tmp_path / "missing")
  with pytest.raises(FileNotFoundError, match="configs/model5.py"):
    prior_targets.load_vqvae(config)


SHIPPED_PRIOR = REPO / "pretrained" / "prior"


@pytest.mark.skipif(not (SHIPPED_PRIOR / "weights.msgpack").exists(), reason="no shipped prior")
def test_the_shipped_prior_speaks_the_requested_digits_without_the_data(tmp_path):
  """pretrained/prior straight from the checkout, with no FSDD anywhere: the front door samples 50
  (five of each digit) at the shipped setting into --output, leaving the prior's folder byte for
  byte as it was, and the classifier hears the requested digit as often as prior_eval.json
  recorded for its 1,000 samples there (binomial tolerance)."""
  workdir = tmp_path / "prior"
  shutil.copytree(SHIPPED_PRIOR, workdir)
  before = {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
  output = tmp_path / "samples"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="",
             FSDD_DIR=str(tmp_path / "no_data_here"), RVQ_JAX_CACHE=str(tmp_path / "cache"))
  out = subprocess.run([sys.executable, "-m", "rvq_jax.main", "--config=configs/realnvp.py",
                        f"--workdir={workdir}", "--mode=sample", f"--output={output}",
                        "--config.sample.num_samples=50", "--config.sample.num_wavs=10"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  after = {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
  assert after == before   # a read-only mode leaves the folder it reads as it was
  recorded = prior_sections.shipped_setting(json.loads((workdir / "prior_eval.json").read_text()))
  got = json.loads((output / "samples.json").read_text())
  assert got["examples"] == 50 and got["temperature"] == recorded["temperature"]
  p = recorded["requested_digit_accuracy"]
  assert abs(got["requested_digit_accuracy"] - p) <= 3 * np.sqrt(p * (1 - p) / 50) + 0.02
  assert len(list((output / "audio" / "samples").glob("*_sample_*.wav"))) == 10
