"""Train/eval steps, parallel equivalence, the loop's resume and fault handling, config checks."""

import functools
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from rvq_jax import audio
from rvq_jax.models import vqvae as vqvae_lib
from rvq_jax.train import parallel as parallel_lib
from rvq_jax.train import steps
from rvq_jax.train import validation
from rvq_jax.train import vqvae as vqvae_train
from tests.conftest import REPO


def tiny_config(fsdd_recordings=None, cache=None):
  """A few-thousand-parameter RVQ-VAE on the real 128x128 spectrograms."""
  from rvq_jax.configs import quick  # pylint: disable=g-import-not-at-top
  config = quick.get_config()
  config.model.encoder_features = (4, 8)
  config.model.latent_dim = 8
  config.rvq.levels = 3
  config.rvq.codes = 16
  config.rvq.restart_candidates = 64
  config.train.batch_size = 16
  config.train.progress_bar = False
  config.parallel.mode = "jit"
  # export fits the bitstream's networks too: one small epoch
  config.codec.context_epochs = 1
  config.codec.context_embed = 4
  config.codec.context_hidden = (16,)
  config.codec.context_batch_size = 4096
  if fsdd_recordings is not None:
    config.data.data_dir = str(fsdd_recordings)
    config.data.cache_dir = str(cache)
  return config


@pytest.fixture(scope="module")
def train_specs(fsdd_dataset):
  config = tiny_config()
  return audio.prepare_spectrograms(fsdd_dataset["train"].waveforms[:256], config.audio)


def _run_steps(step_fn, state, batches):
  metrics = []
  for batch in batches:
    state, m = step_fn(state, batch)
    metrics.append(m)
  return state, metrics


def test_loss_falls_on_real_batches_in_float32_and_bfloat16_alike(train_specs):
  """60 steps on real FSDD batches: the float32 loss falls; mixed precision
  (model.compute_dtype='bfloat16') from the same initial state tracks it, every step's loss within
  1% of the float32 step's and its commitment within 5%, with parameters and optimizer state still
  float32. (A loss is a mean over 16 x 128 x 128 x 2 pixels, so bfloat16's 0.2% rounding of each
  value averages out; what remains is the drift of the parameters under rounded gradients, and the
  commitment, a small difference of close vectors, drifts most. A gradient or loss computed in
  bfloat16 end to end moves these by more.)"""
  config = tiny_config()
  config.optim.learning_rate = 3e-3
  batches = [train_specs[(16 * i) % 240:(16 * i) % 240 + 16] for i in range(60)]
  curves = {}
  for dtype in ("float32", "bfloat16"):
    config.model.compute_dtype = dtype
    state = steps.create_train_state(config, jax.random.key_data(jax.random.key(0)),
                                     train_specs[:16])
    state, metrics = _run_steps(jax.jit(steps.make_vqvae_train_step(config)), state, batches)
    curves[dtype] = np.array([[float(m["loss"]), float(m["commitment"])] for m in metrics])
    assert int(state.step) == 60
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves((state.params, state.opt_state))
               if jnp.issubdtype(x.dtype, jnp.floating))
  losses = curves["float32"][:, 0]
  assert np.isfinite(losses).all()
  assert losses[-10:].mean() < 0.7 * losses[:5].mean(), losses
  relative = np.abs(curves["bfloat16"] - curves["float32"]) / curves["float32"]
  print("bfloat16 vs float32, largest relative difference: loss", relative[:, 0].max(),
        "commitment", relative[:, 1].max())
  assert relative[:, 0].max() < 0.01, relative[:, 0]
  assert relative[:, 1].max() < 0.05, relative[:, 1]


def test_learning_rate_schedules_follow_their_formulas():
  """Warm-up then constant or cosine, against the formulas written out in numpy."""
  config = tiny_config()
  o = config.optim
  o.learning_rate, o.warmup_steps, o.decay_steps, o.final_lr_fraction = 2e-3, 10, 110, 0.1
  t = np.arange(0, 150)
  warm = o.learning_rate * t / o.warmup_steps
  o.schedule = "constant"
  lr = np.array([steps.learning_rate_schedule(o)(int(i)) for i in t])
  np.testing.assert_allclose(lr, np.where(t < 10, warm, o.learning_rate), rtol=1e-6)
  o.schedule = "cosine"
  progress = np.clip((t - 10) / 100, 0, 1)
  cosine = o.learning_rate * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))
  lr = np.array([steps.learning_rate_schedule(o)(int(i)) for i in t])
  np.testing.assert_allclose(lr, np.where(t < 10, warm, cosine), rtol=1e-5, atol=1e-9)
  o.decay_steps = 10
  with pytest.raises(Exception, match=r"optim\.decay_steps"):
    validation.validate_config(config, 1)


def test_eval_step_ignores_padding(train_specs):
  config = tiny_config()
  state = steps.create_train_state(config, jax.random.key_data(jax.random.key(0)), train_specs[:16])
  eval_step = jax.jit(steps.make_eval_step(config))
  real = eval_step(state, train_specs[:8], jnp.ones(8))
  padded = eval_step(state, jnp.concatenate([train_specs[:8], train_specs[100:108] * 5]),
                     jnp.concatenate([jnp.ones(8), jnp.zeros(8)]))
  for key in ("loss", "reconstruction", "commitment", "spectrogram_mse", "counts"):
    np.testing.assert_allclose(padded[key], real[key], rtol=1e-5, atol=1e-6)


def test_the_log_magnitude_loss_reads_the_same_magnitudes_in_every_representation(fsdd_dataset):
  """loss.log_magnitude_weight: the term is the mean squared difference of 0.5 log(|X|^2 + eps^2)
  between real recordings and the same recordings with noise at 20 dB SNR, the same in all three
  representations and as numpy computes it from the complex STFT; its gradient is finite on the
  exact zeros of the padding; and the eval step adds weight x that term to the MSE."""
  config = tiny_config()
  eps = config.loss.log_magnitude_eps
  clean = np.asarray(fsdd_dataset["test"].waveforms[:4])
  noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
  noisy = clean + noise * np.sqrt((clean**2).mean(-1, keepdims=True) / 100)
  spectra = [np.asarray(audio.stft(jnp.asarray(w), config.audio.frame_length,
                                   config.audio.hop_length)) for w in (clean, noisy)]
  log_mag = [0.5 * np.log(np.abs(s).astype(np.float64)**2 + eps**2) for s in spectra]
  reference = ((log_mag[1] - log_mag[0])**2).mean(axis=(1, 2))
  assert reference.min() > 0.05   # the noise fills the quiet bins: a real difference
  for representation in ("real_imag", "mag_phase", "logmag_phase"):
    config.audio.representation = representation
    images = [audio.to_spectrogram(jnp.asarray(w), config.audio) for w in (noisy, clean)]
    np.testing.assert_allclose(steps.log_magnitude_error(*images, config.audio, eps), reference,
                               rtol=2e-3)

  config.audio.representation = "real_imag"
  silence = jnp.zeros((1, 8, 8, 2))
  grad = jax.grad(lambda x: steps.log_magnitude_error(x, silence, config.audio, eps).sum())(silence)
  assert np.isfinite(np.asarray(grad)).all()

  specs = audio.prepare_spectrograms(clean, config.audio)
  state = steps.create_train_state(config, jax.random.key_data(jax.random.key(0)), specs)
  plain = steps.make_eval_step(config)(state, specs, jnp.ones(4))
  config.loss.log_magnitude_weight = 0.5
  weighted = steps.make_eval_step(config)(state, specs, jnp.ones(4))
  decoded = vqvae_lib.forward(vqvae_lib.make_model(config), state.params, state.codebook.embed,
                              specs, config).mean
  term = steps.log_magnitude_error(decoded, specs, config.audio, eps).mean()
  np.testing.assert_allclose(plain["reconstruction"], plain["spectrogram_mse"], rtol=1e-6)
  np.testing.assert_allclose(weighted["reconstruction"], plain["spectrogram_mse"] + 0.5 * term,
                             rtol=1e-5)
  train_step = jax.jit(steps.make_vqvae_train_step(config))
  _, metrics = train_step(state, specs)
  assert bool(metrics["finite"]) and metrics["reconstruction"] > metrics["spectrogram_mse"]


@pytest.mark.parametrize("init", ["uniform", "glorot_normal", "kmeans"])
def test_every_init_trains(train_specs, init):
  config = tiny_config()
  config.rvq.init = init
  state = steps.create_train_state(config, jax.random.key_data(jax.random.key(0)), train_specs[:16])
  if init == "kmeans":
    np.testing.assert_allclose(state.codebook.embed_sum / state.codebook.cluster_size[..., None],
                               state.codebook.embed, rtol=1e-5, atol=1e-6)
  state, metrics = _run_steps(jax.jit(steps.make_vqvae_train_step(config)), state,
                              [train_specs[16 * i:16 * i + 16] for i in range(3)])
  assert all(bool(m["finite"]) for m in metrics)


@pytest.mark.parametrize("mode", ["pmap", "sharded"])
def test_every_mode_equals_one_device(train_specs, mode):
  """8 simulated devices, same global batch, 5 steps: params, optimizer state and codebooks agree
  with one device, with the state created placed and donated as the training loop does it."""
  assert jax.device_count() == 8
  config = tiny_config()
  config.rvq.dead_code_steps = 1      # exercise restarts (candidates assembled across devices)
  config.rvq.dropout = True           # and quantizer dropout (levels drawn identically)
  rng = jax.random.key_data(jax.random.key(0))
  batches = [np.asarray(train_specs[16 * i:16 * i + 16]) for i in range(5)]
  init = functools.partial(steps.create_train_state, config, rng, batches[0])
  results = {}
  for m in ("jit", mode):
    config.parallel.mode = m
    parallel = parallel_lib.Parallel(config)
    assert parallel.num_devices == (1 if m == "jit" else 8)
    state = parallel.create_state(init)
    first_params = jax.tree.leaves(state.params)[0]
    step = parallel.train_step(functools.partial(steps.make_vqvae_train_step, config))
    results[m], metrics = _run_steps(step, state, [parallel.shard_batch(b) for b in batches])
    assert first_params.is_deleted()          # donated
    assert np.asarray(metrics[-1]["loss"]).shape == ()
    leaf = jax.tree.leaves(results[m].params)[0]
    assert len(leaf.sharding.device_set) == parallel.num_devices and leaf.sharding.is_fully_replicated
  one, other = results["jit"], results[mode]
  assert int(other.step) == 5
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
               (one.params, one.opt_state, one.codebook),
               (other.params, other.opt_state, other.codebook))
  assert int(one.codebook.unused_steps.max()) <= 1  # restarts happened and were reset


def test_batches_of_the_host_path_equal_the_device_path(train_specs):
  """The multi-process batch path (indices on the host, rows per process, global array assembled
  from process-local data) gives the same global batches as the one-process on-device gather."""
  config = tiny_config()
  labels = np.arange(train_specs.shape[0])
  examples = (np.asarray(train_specs), labels)
  key = np.asarray(jax.random.key_data(jax.random.key(3)))
  for mode in ("sharded", "pmap"):
    config.parallel.mode = mode
    parallel = parallel_lib.Parallel(config)
    device_batches = parallel.batch_fn(examples, key, 16)
    parallel.multi_process = True             # one process is a valid (degenerate) multi-process run
    host_batches = parallel.batch_fn(examples, key, 16)
    for step in (0, 7, 15, 16, 40):            # across epoch boundaries (16 steps per epoch)
      a, b = device_batches(step), host_batches(step)
      assert a[0].sharding == b[0].sharding
      jax.tree.map(np.testing.assert_array_equal, a, b)
    idx = np.asarray(b[1]).reshape(-1)
    assert len(set(idx.tolist())) == 16


def test_invalid_configs_fail_before_compiling():
  cases = [
      (lambda c: setattr(c.rvq, "levels", 0), "rvq.levels"),
      (lambda c: setattr(c.train, "batch_size", 12), "train.batch_size=12 is not divisible"),
      (lambda c: setattr(c.audio, "representation", "cqt"), "audio.representation"),
      (lambda c: setattr(c.data, "max_samples", 8128), "latent grid would not match"),
      (lambda c: setattr(c.model, "encoder_features", (8,) * 8),  # 128 / 2^8 < 1
       "latent grid would not match"),
      (lambda c: setattr(c.model, "decoder", "laplace"), "model.decoder"),
      (lambda c: setattr(c.parallel, "mode", "fsdp"), "parallel.mode"),
      (lambda c: setattr(c.loss, "log_magnitude_weight", -1.0), "loss.log_magnitude_weight"),
      (lambda c: setattr(c.loss, "log_magnitude_eps", 0.0), "loss.log_magnitude_eps"),
  ]
  for mutate, message in cases:
    config = tiny_config()
    mutate(config)
    with pytest.raises(ValueError, match=message):
      validation.validate_config(config, num_devices=8)


def _params(workdir):
  with ocp.CheckpointManager(pathlib.Path(workdir, "checkpoints").absolute()) as manager:
    restored = manager.restore(manager.latest_step())
  return manager.latest_step(), restored


@pytest.mark.slow
def test_sigkill_and_resume_ends_like_an_uninterrupted_run(fsdd_recordings, tmp_path):
  config = tiny_config(fsdd_recordings, tmp_path / "cache")
  config.train.num_steps = 24
  config.train.checkpoint_every_steps = 4
  vqvae_train.train(config, str(tmp_path / "straight"))

  killed = tmp_path / "killed"
  script = (
      "import sys; sys.path.insert(0, '.');"
      "from tests.test_train import tiny_config; from rvq_jax.train import vqvae as vqvae_train, trainer;"
      f"c = tiny_config({str(fsdd_recordings)!r}, {str(tmp_path / 'cache')!r});"
      "c.train.num_steps = 10**6; c.train.num_epochs = 1000; c.train.checkpoint_every_steps = 4;"
      f"vqvae_train.train(c, {str(killed)!r})")
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=8")
  proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while time.time() < deadline and not (killed / "checkpoints" / "8").is_dir():
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert (killed / "checkpoints" / "8").is_dir(), "no checkpoint before the kill"

  vqvae_train.train(config, str(killed))  # resumes from the last complete checkpoint, ends at 24
  step_a, a = _params(tmp_path / "straight")
  step_b, b = _params(killed)
  assert step_a == step_b == 24
  jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(fsdd_recordings, tmp_path):
  workdir = tmp_path / "preempted"
  script = (
      "import sys; sys.path.insert(0, '.');"
      "from tests.test_train import tiny_config; from rvq_jax.train import vqvae as vqvae_train, trainer;"
      f"c = tiny_config({str(fsdd_recordings)!r}, {str(tmp_path / 'cache')!r});"
      "c.train.num_steps = 10**6; c.train.num_epochs = 1000; c.train.checkpoint_every_steps = 10**6;"
      "c.train.log_every_steps = 1;"
      f"\ntry:\n  vqvae_train.train(c, {str(workdir)!r})\nexcept trainer.Preempted as e:\n  print('PREEMPTED', e)")
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=8")
  proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  # The first save always happens (step 1); wait until training is well past it.
  while time.time() < deadline and not (workdir / "checkpoints" / "1").is_dir():
    time.sleep(0.2)
  time.sleep(3)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=240)
  assert proc.returncode == 0 and "PREEMPTED SIGTERM: saved step" in out, out
  saved = int(out.split("saved step ")[1].split()[0])
  step, _ = _params(workdir)
  assert step == saved > 1          # saved at the interrupted step, not at an interval

  config = tiny_config(fsdd_recordings, tmp_path / "cache")
  config.train.num_steps = saved + 2
  state, _, _ = vqvae_train.train(config, str(workdir))
  assert int(state.step) == saved + 2
  info = json.loads((workdir / "run_info.json").read_text())
  assert [s["start_step"] for s in info] == [0, saved]


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_checkpoint(fsdd_recordings, tmp_path):
  config = tiny_config(fsdd_recordings, tmp_path / "cache")
  config.train.checkpoint_every_steps = 2
  config.train.log_every_steps = 1
  config.train.num_steps = 4
  workdir = str(tmp_path / "nan")
  vqvae_train.train(config, workdir)                   # good checkpoints at steps 2 and 4
  config.train.num_steps = 12
  config.optim.learning_rate = float("inf")     # the resumed run's first update diverges
  with pytest.raises(FloatingPointError, match=r"at step 5.*last good checkpoint \(step 4\)"):
    vqvae_train.train(config, workdir)
  step, state = _params(workdir)
  assert step == 4
  for leaf in jax.tree.leaves(state["params"]):
    assert np.isfinite(leaf).all()


def test_sharded_step_moves_only_gradients_and_statistics():
  """Under sharded jit no activation crosses devices: the compiled step has all-reduces (gradients,
  losses, EMA statistics) but no all-gather, all-to-all or permutation of the batch's rows."""
  assert jax.device_count() == 8
  config = tiny_config()
  config.parallel.mode = "sharded"
  config.rvq.block_rows = 256               # several code-search blocks per device
  parallel = parallel_lib.Parallel(config)
  batch = jax.ShapeDtypeStruct((16, 128, 128, 2), jnp.float32, sharding=parallel.batch_sharding)
  state = parallel.abstract_state(functools.partial(steps.create_train_state, config),
                                  np.zeros(2, np.uint32), np.zeros(batch.shape, np.float32))
  step = parallel.train_step(functools.partial(steps.make_vqvae_train_step, config))
  hlo = step.lower(state, batch).compile().as_text()
  assert " all-reduce(" in hlo or " all-reduce-start(" in hlo
  for collective in ("all-gather", "all-to-all", "collective-permute"):
    assert f" {collective}(" not in hlo and f" {collective}-start(" not in hlo, collective
