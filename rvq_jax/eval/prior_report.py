"""Sampling the RealNVP prior into audio, and scoring the samples.

Path of a sample: base (temperature T) -> flow inverse -> un-standardise -> un-project ->
optionally snap to the nearest RVQ code path (greedy, the target's levels) -> VQ-VAE decoder ->
spectrogram -> inverse STFT -> training-std scaling undone -> 8 kHz WAV.

Scores (the digit classifier of `config.eval.classifier_workdir`): Inception Score, class
histogram, Fréchet distance of classifier embeddings against the real test set; for a
class-conditional base, how often a sample is recognised as the digit it was asked for; and a
memorisation check: each sample's distance (classifier embedding) to its nearest training clip,
beside the same distance for real test clips, which are certainly not copies. The decoder bounds
all of this, so the real test latents decoded the same way ("decoded test targets") are scored too.
"""

from __future__ import annotations

import functools
import itertools
import json
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax import files
from rvq_jax import run_config
from rvq_jax.eval import figures
from rvq_jax.eval import judge
from rvq_jax.eval import metrics
from rvq_jax.models import realnvp
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import classifier as classifier_train
from rvq_jax.train import prior
from rvq_jax.train import prior_steps
from rvq_jax.train import prior_targets
from rvq_jax.train import rngs


def _to_latent(targets, stats):
  """Target-space arrays [..., C] -> VQ-VAE latent space [..., D]."""
  return prior_targets.unproject(targets, stats["center"], stats["basis"]) if "center" in stats else targets


def make_decoder(run: prior_targets.VQVAERun, levels: int):
  """`decode(targets [B, h, w, C], stats, snap) -> spectrograms [B, H, W, 2]` (jitted)."""
  model = vqvae.make_model(run.config)
  params, embed = run.state.params, run.state.codebook.embed

  @functools.partial(jax.jit, static_argnames="snap")
  def decode(targets, stats, snap: bool):
    z = _to_latent(targets, stats)
    if snap:
      z = rvq.quantize(embed, z.reshape(-1, z.shape[-1]), levels,
                       block_rows=run.config.rvq.block_rows).quantized.reshape(z.shape)
    out = model.apply(params, z, method=vqvae.VQVAE.decode)
    return vqvae.split_decoder_output(out.astype(jnp.float32), run.config)[0]

  return decode


def make_denoiser(config, shape):
  """`denoise(state, x [B, h, w, C], labels [B]) -> x + sigma^2 grad_x log p(x | labels)`: one
  Tweedie step from the flow's own density, which a flow trained on targets plus Gaussian noise of
  per-channel std sigma (`prior_targets.augmentation_std`) models; the identity without it."""
  model = prior_steps.make_model(config, shape)

  def denoise(state: prior_steps.PriorState, x, labels):
    if config.target.noise_augmentation == 0:
      return x
    def total_log_prob(x):   # samples are independent: the sum's gradient is each one's own
      return model.apply(state.params, x, labels, state.stats["mean"], state.stats["std"],
                         method=realnvp.FlowPrior.log_prob).sum()
    sigma = prior_targets.augmentation_std(config, state.stats)
    return x + sigma ** 2 * jax.grad(total_log_prob)(x)

  return denoise


def make_sampler(config, shape, guidance: float | None = None):
  """`sample(state, rng, labels [B], temperature) -> targets [B, h, w, C]` (jitted), guided by
  `guidance` (default: sample.guidance; realnvp.FlowPrior), denoised by `make_denoiser` when the
  flow was trained with noise augmentation and `sample.denoise`."""
  guidance = config.sample.get("guidance", 0.0) if guidance is None else guidance
  model = prior_steps.make_model(config, shape, guidance)
  denoise = make_denoiser(config, shape)

  @jax.jit
  def sample(state: prior_steps.PriorState, rng, labels, temperature):
    x = model.apply(state.params, rng, labels, state.stats["mean"], state.stats["std"],
                    temperature, method=realnvp.FlowPrior.sample)
    return denoise(state, x, labels) if config.sample.denoise else x

  return sample


def sample_labels_for_digits(num: int, digit: int | None) -> np.ndarray:
  """Requested digits [num]: `digit` every time when set, else 0..9 in turn."""
  if digit is not None:
    return np.full(num, digit, np.int32)
  return (np.arange(num) % realnvp.NUM_CLASSES).astype(np.int32)


def sample_labels(config, num: int) -> np.ndarray:
  """Requested digits [num] of the flow: `sample_labels_for_digits` for a conditional prior;
  zeros otherwise."""
  if not realnvp.is_conditional(config.prior):
    return np.zeros(num, np.int32)
  return sample_labels_for_digits(num, config.sample.digit)


def sample_batches(config, state, sample, decode, labels, temperature: float, snap: bool,
                   seed_offset: int = 0):
  """Yields (sampled targets [b, h, w, C], decoded spectrograms [b, H, W, 2]) for consecutive
  batches of `labels` [N] (`sample.batch_size` each), with `sample` from `make_sampler` and
  `decode` from `make_decoder` (each compiled once); batch i draws from fold_in(key, its start),
  so the samples do not depend on how many are drawn."""
  key = jax.random.fold_in(jax.random.wrap_key_data(rngs.seed_stream(config.seed, rngs.SAMPLES)),
                           seed_offset)
  b = config.sample.batch_size
  for start in range(0, len(labels), b):
    t = sample(state, jax.random.fold_in(key, start), jnp.asarray(labels[start:start + b]),
               temperature)
    yield np.asarray(t), np.asarray(decode(t, state.stats, snap))


def draw_samples(config, state, sample, decode, labels, temperature: float, snap: bool,
                 seed_offset: int = 0):
  """All of `sample_batches` at once: (targets [N, h, w, C], spectrograms [N, H, W, 2])."""
  latents, specs = zip(*sample_batches(config, state, sample, decode, labels, temperature, snap,
                                       seed_offset))
  return np.concatenate(latents), np.concatenate(specs)


def shown_count(config) -> int:
  """How many of the first samples `write_samples` can use: the WAVs, Figure 3, and the class
  grid's first `grid_columns` of each digit (digits drawn 0..9 in turn)."""
  s = config.sample
  return max(s.num_wavs, s.num_figures, realnvp.NUM_CLASSES * s.grid_columns)


def measure_streamed(scorer, batches, keep: int):
  """Measures (`Scorer.measure`) every batch of (latents, spectrograms) as it comes, keeping only
  the first `keep` samples' arrays: memory does not grow with the number of samples. Returns
  (measured, kept latents, kept spectrograms)."""
  measured, latents, specs, held = [], [], [], 0
  for t, spec in batches:
    measured.append(scorer.measure(spec))
    if held < keep:
      latents.append(t[:keep - held])
      specs.append(spec[:keep - held])
      held += len(specs[-1])
  return Scorer.concatenate(measured), np.concatenate(latents), np.concatenate(specs)


class Scorer:
  """Scores spectrogram sets with the digit classifier(s) against the real test and training sets
  (when `run` was loaded with its data; without it, only the classifiers' own scores: Inception
  Score, class histogram, requested-digit accuracy).

  The judge (`eval.classifier_workdir`) gives the full record; with `eval.second_classifier_workdir`
  every judge's core scores also go to 'by_scorer' ({'judge': ..., 'second': ...}), so that a claim
  can use the worse of the two. Fréchet distances are also given size-matched
  ('frechet_distance_matched': the mean over disjoint chunks of `matched_size` examples, the size
  of the held-out reference sets), since the distance of a small set is biased upwards.
  """

  def __init__(self, config, run: prior_targets.VQVAERun):
    self.judges = {"judge": judge.load_classifier(config.eval.classifier_workdir)}
    if config.eval.get("second_classifier_workdir"):
      classifier_train.check_trained(config.eval.second_classifier_workdir)
      self.judges["second"] = judge.load_classifier(config.eval.second_classifier_workdir)
    self.classifier = self.judges["judge"]
    self.audio_config = run.config.audio   # the VQ-VAE's representation, which it decodes to
    self.scale, self.silent_rms_dbfs = run.scale, config.eval.silent_rms_dbfs
    self.test_embeddings, self.reference = None, {}
    self.matched_size = None
    if run.specs is not None:
      self.reference = {name: j.predict(run.specs["test"], self.audio_config)[1]
                        for name, j in self.judges.items()}
      self.test_embeddings = self.reference["judge"]
      _, self.train_embeddings = self.classifier.predict(run.specs["train"], self.audio_config)
      self.test_nearest = self.nearest_train_distance(self.test_embeddings)
      self.matched_size = len(run.specs["validation"])

  def nearest_train_distance(self, embeddings: np.ndarray) -> np.ndarray:
    """Euclidean distance [N] from each embedding to its nearest training clip's."""
    a, b = jnp.asarray(embeddings), jnp.asarray(self.train_embeddings)
    d2 = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]
    return np.sqrt(np.maximum(np.asarray(d2.min(1)), 0.0))

  def predict(self, spectrograms) -> tuple[np.ndarray, np.ndarray]:
    """The judge's digit probabilities [N, 10] and embeddings [N, E] of a spectrogram set."""
    return self.classifier.predict(spectrograms, self.audio_config)

  def matched_frechet_distance(self, embeddings: np.ndarray, reference: np.ndarray) -> float:
    """Mean Fréchet distance to `reference` over disjoint chunks of `matched_size` examples (all
    of them when fewer)."""
    n = min(self.matched_size, len(embeddings))
    return float(np.mean([metrics.frechet_distance(jnp.asarray(embeddings[i:i + n]),
                                                   jnp.asarray(reference))
                          for i in range(0, len(embeddings) - n + 1, n)]))

  def quiet_and_clipped(self, spectrograms) -> tuple[np.ndarray, np.ndarray]:
    """Per spectrogram [N]: near-silent (RMS below `eval.silent_rms_dbfs`, dB re full scale) and
    clipped (some sample beyond full scale, so clipped when written as 16-bit PCM, or not finite:
    such a sample is a defect too, never counted as fine)."""
    rms, peak = [], []
    for start in range(0, len(spectrograms), 100):
      waves = np.asarray(audio.to_waveform(jnp.asarray(spectrograms[start:start + 100]),
                                           self.audio_config)) * self.scale
      rms.append(np.sqrt((waves**2).mean(-1)))
      peak.append(np.abs(waves).max(-1))
    rms, peak = np.concatenate(rms), np.concatenate(peak)
    finite = np.isfinite(rms) & np.isfinite(peak)
    rms_db = 20 * np.log10(np.maximum(np.where(finite, rms, 1.0), 1e-10))
    return (rms_db < self.silent_rms_dbfs) & finite, (peak > 1.0) | ~finite

  def judge_scores(self, probs, embeddings, requested=None, reference=None) -> dict:
    """One judge's core scores of a set: Inception Score, class histogram, mean top probability,
    Fréchet distance (full and size-matched) against `reference` embeddings, and the
    requested-digit accuracy (overall and per digit 0-9) when `requested` [N] is given."""
    out = judge.sample_scores(probs, embeddings, reference)
    out["mean_top_probability"] = float(np.asarray(probs).max(-1).mean())
    if reference is not None:
      out["frechet_distance_matched"] = self.matched_frechet_distance(embeddings, reference)
    if requested is not None:
      correct = np.asarray(probs).argmax(-1) == requested
      out["requested_digit_accuracy"] = float(correct.mean())
      out["requested_digit_accuracy_per_digit"] = [
          float(correct[requested == d].mean()) if np.any(requested == d) else None
          for d in range(realnvp.NUM_CLASSES)]
    return out

  def measure(self, spectrograms) -> dict:
    """Per-example measurements of a spectrogram set [N, H, W, 2], all a score needs (so that a
    large set can be measured batch by batch and `concatenate`d): each judge's (probabilities
    [N, 10], embeddings [N, E]) under its name, and 'near_silent', 'clipped' [N] bool."""
    out = {name: j.predict(spectrograms, self.audio_config) for name, j in self.judges.items()}
    out["near_silent"], out["clipped"] = self.quiet_and_clipped(spectrograms)
    return out

  @staticmethod
  def concatenate(measured: list[dict]) -> dict:
    """`measure` outputs of consecutive batches -> one for the whole set."""
    return jax.tree.map(lambda *xs: np.concatenate(xs), *measured)

  def score(self, spectrograms=None, requested=None, measured=None) -> dict:
    """Scores of a spectrogram set [N, H, W, 2], or of its `measured` (`measure`) when the caller
    already has it (`requested` [N]: the digits asked for, for a conditional prior)."""
    m = self.measure(spectrograms) if measured is None else measured
    probs, embeddings = m["judge"]
    out = {"examples": int(len(probs)),
           **self.judge_scores(probs, embeddings, requested, self.test_embeddings)}
    quiet, clipped = m["near_silent"], m["clipped"]
    out.update(near_silent_fraction=float(quiet.mean()), clipped_fraction=float(clipped.mean()))
    if requested is not None:
      heard = probs.argmax(-1)
      asked = [requested == d for d in range(realnvp.NUM_CLASSES)]
      # Why a digit misses: how often it came out near-silent, and what it was heard as
      # (rows: requested digit, columns: heard digit, counts).
      out["near_silent_fraction_per_digit"] = [float(quiet[a].mean()) if a.any() else None
                                               for a in asked]
      out["requested_heard_counts"] = [
          np.bincount(heard[a], minlength=realnvp.NUM_CLASSES).tolist() for a in asked]
    if len(self.judges) > 1:
      out["by_scorer"] = {"judge": {k: out[k] for k in out if k in _CORE}}
      for name in list(self.judges)[1:]:
        out["by_scorer"][name] = self.judge_scores(*m[name], requested, self.reference.get(name))
    if self.test_embeddings is None:
      return out
    nearest = self.nearest_train_distance(embeddings)
    out["memorization"] = {
        "median_nearest_train_distance": float(np.median(nearest)),
        "median_nearest_train_distance_real_test": float(np.median(self.test_nearest)),
        # A copied clip sits closer to the training set than (almost) any real held-out clip.
        "fraction_closer_than_1st_percentile_of_real_test": float(
            (nearest < np.percentile(self.test_nearest, 1)).mean())}
    return out


# The scores every judge gives (`Scorer.judge_scores`), kept per judge in 'by_scorer'.
_CORE = ("inception_score", "class_histogram", "frechet_distance", "frechet_distance_matched",
         "mean_top_probability", "requested_digit_accuracy", "requested_digit_accuracy_per_digit")


def write_samples(config, workdir: pathlib.Path, run: prior_targets.VQVAERun, latents, specs,
                  labels, heard=None, conditional: bool | None = None,
                  setting: str | None = None) -> list[pathlib.Path]:
  """The first `sample.num_wavs` samples as WAV in <workdir>/audio/samples/, Figure 3 (of
  `latents` [N, h, w, C]), and for a conditional prior sampled for every digit, the grid of
  `sample.grid_columns` samples per digit (`heard` [N]: the classifier's digit for each sample,
  shown above it). `conditional` and `setting` (the grid's title) default to the flow's config."""
  if jax.process_index() != 0:
    return []
  if conditional is None:
    conditional = realnvp.is_conditional(config.prior)
  if setting is None:
    setting = (f"T={config.sample.temperature}{', snapped' if config.sample.snap else ''}"
               + (f", guidance {config.sample.guidance:g}" if config.sample.get("guidance")
                  else ""))
  columns = config.sample.grid_columns
  rows = [np.flatnonzero(labels == d)[:columns] for d in range(realnvp.NUM_CLASSES)]
  if conditional and columns and all(len(r) == columns for r in rows):
    rows = np.stack(rows)
    figures.save(figures.class_grid_figure(
        specs[rows], heard[rows], run.config.audio, run.config.data.sample_rate,
        f"class-conditional samples, {setting}"), workdir / "figures" / "class_grid.png")
  out_dir = workdir / "audio" / "samples"
  count = min(config.sample.num_wavs, len(specs))
  waves = np.asarray(audio.to_waveform(jnp.asarray(specs[:count]), run.config.audio))
  paths = []
  for i in range(count):
    name = f"{labels[i]}_sample_{i}.wav" if conditional else f"sample_{i}.wav"
    if not np.all(np.isfinite(waves[i])):   # counted as a defect by the scores; never written
      logging.warning("%s: sample %d is not finite; not written.", out_dir / name, i)
      continue
    data_lib.write_wav(out_dir / name, waves[i] * run.scale, run.config.data.sample_rate)
    paths.append(out_dir / name)
  for i in range(min(config.sample.num_figures, count)):
    title = f"sample {i}" + (f" (digit {labels[i]} requested)" if conditional else "")
    figures.save(figures.latent_sample_figure(latents[i], specs[i], run.config.audio,
                                              run.config.data.sample_rate, title),
                 workdir / "figures" / f"figure3_sample_{i}.png")
  logging.info("wrote %d samples to %s", count, out_dir)
  return paths


def evaluate_prior(config, workdir, state: prior_steps.PriorState, targets: prior_targets.Targets,
                   run: prior_targets.VQVAERun) -> dict:
  """Bits/dim, references and sample scores over `sample.temperatures` x snap; writes
  <workdir>/prior_eval.json, WAVs and figures. Returns the JSON contents."""
  workdir = pathlib.Path(workdir)
  levels = config.target.levels or run.config.rvq.levels
  decode = make_decoder(run, levels)
  scorer = Scorer(config, run)
  eval_step = jax.jit(prior_steps.make_prior_eval_step(config, targets.shape))
  bpd = {s: prior_steps.evaluate_bits_per_dim(eval_step, state, prior_targets.fixed_noise_targets(
      config, targets, s), targets.splits[s][1], config.train.eval_batch_size)
         for s in ("validation", "test")}
  test_targets, test_labels = targets.splits["test"]
  heldout_targets, heldout_labels = targets.splits["validation"]

  def decode_all(x):
    return np.concatenate([np.asarray(decode(jnp.asarray(x[i:i + 100]), state.stats, False))
                           for i in range(0, len(x), 100)])
  result = {
      "step": int(state.step),
      "target": {"shape": list(targets.shape), "kind": config.target.kind, "levels": levels,
                 "projection_dim": config.target.projection_dim,
                 "variance_kept": targets.variance_kept, "preprocess": config.target.preprocess,
                 "spacing": targets.spacing, "dequantization": config.target.dequantization,
                 "dequantization_noise": config.target.dequantization_noise,
                 "noise_augmentation": config.target.noise_augmentation,
                 "noise_std": float(targets.stats["noise_std"]),
                 "cell_width": float(targets.stats["cell_width"]),
                 "distinct_cells": targets.distinct_cells},
      "prior": config.prior.to_dict(),
      # The setting of the WAVs and figures written, and of --mode=sample with the same config.
      "sampling": {"temperature": float(config.sample.temperature), "snap": config.sample.snap,
                   "guidance": float(config.sample.get("guidance", 0.0)),
                   "denoise": bool(config.sample.denoise and config.target.noise_augmentation > 0)},
      # Upper bound on the entropy of the grid-snapped latents, bits per dimension.
      "bits_per_dim": bpd,
      # What the decoder makes of real latents: clean, and with the dequantization noise that
      # the prior's samples carry by construction.
      "references": {"real_test": scorer.score(run.specs["test"], test_labels),
                     # Size-matched real against real: held-out clips the FD reference never saw.
                     "real_heldout": scorer.score(run.specs["validation"], heldout_labels),
                     # The ceiling: real held-out latents through the target space and decoder,
                     # scored like samples (the best a prior in this target space can do).
                     "ceiling": scorer.score(decode_all(heldout_targets), heldout_labels),
                     "decoded_test_targets": scorer.score(decode_all(test_targets), test_labels),
                     "decoded_noisy_test_targets": scorer.score(decode_all(
                         prior_targets.fixed_noise_targets(
                             config, targets, "test", config.target.dequantization_noise)),
                         test_labels)},
      "samples": [],
  }
  labels = sample_labels(config, config.sample.num_samples)
  requested = labels if realnvp.is_conditional(config.prior) else None
  shown = (config.sample.temperature, config.sample.snap, config.sample.get("guidance", 0.0))
  samplers = {}
  for guidance in config.sample.get("guidances", (0.0,)):
    sample_fn = samplers[guidance] = make_sampler(config, targets.shape, guidance)
    for temperature, snap in itertools.product(config.sample.temperatures,
                                               config.sample.snap_settings):
      latents, specs = draw_samples(config, state, sample_fn, decode, labels, temperature, snap)
      row = {"temperature": float(temperature), "snap": snap}
      if guidance:
        row["guidance"] = float(guidance)
      measured = scorer.measure(specs)
      row.update(scorer.score(requested=requested, measured=measured))
      result["samples"].append(row)
      logging.info("samples T=%.2f snap=%s guidance=%g: IS %.3f, FD %.1f%s", temperature, snap,
                   guidance, row["inception_score"], row["frechet_distance"],
                   f", requested digit {row['requested_digit_accuracy']:.3f}" if requested is not None
                   else "")
      if (temperature, snap, guidance) == shown:
        write_samples(config, workdir, run, latents, specs, labels,
                      measured["judge"][0].argmax(-1))
  if config.prior.get("label_dropout", 0.0) > 0:
    # A flow trained with dropped labels also has an unconditional density ("no digit"): its
    # class shares say whether it covers every digit without being told which.
    # Any guided sampler draws the same: for "no digit" (1 + w) f(x, none) - w f(x, none) is
    # f(x, none); one already compiled is reused.
    unconditional = np.full(len(labels), realnvp.NULL_LABEL, np.int32)
    sample_fn = samplers.get(0.0) or next(iter(samplers.values()))
    _, specs = draw_samples(config, state, sample_fn, decode, unconditional,
                            config.sample.temperature, False, seed_offset=1)
    row = {"temperature": float(config.sample.temperature), "snap": False, "unconditional": True}
    row.update(scorer.score(measured=scorer.measure(specs)))
    result["samples"].append(row)
    logging.info("unconditional samples T=%.2f: IS %.3f, FD %.1f, class shares %s",
                 config.sample.temperature, row["inception_score"], row["frechet_distance"],
                 np.round(row["class_histogram"], 3).tolist())
  if jax.process_index() == 0:
    files.write_text(workdir / "prior_eval.json", json.dumps(result, indent=2) + "\n")
  return result


def evaluate(config, workdir: str, output: str | None = None) -> dict:
  """`--mode=evaluate`: re-score the prior trained in `workdir` (as saved there: its config.json)
  and write prior_eval.json, WAVs and figures to `output` (default: a training workdir itself;
  `run_config.record_folder`)."""
  config = run_config.saved_config(workdir, config)
  out = run_config.record_folder(workdir, output)
  classifier_train.check_trained(config.eval.classifier_workdir)
  run = prior_targets.load_vqvae(config)
  prior_targets.check_vqvae(workdir, config, run)
  targets = prior_targets.prepare_targets(config, run)
  state = prior.restore_prior(config, workdir, run.config)
  return evaluate_prior(config, out, state, targets, run)


def open_for_sampling(config, workdir: str, output: str | None, restore):
  """What `--mode=sample` of a prior (the flow or the anchor) reads, checked before anything
  runs: (the run's saved config, its VQ-VAE without data, the state `restore(config, workdir,
  vq_config)`). Raises ConfigError for a missing `output` or the prior's own folder."""
  if not output:
    raise errors.ConfigError("--mode=sample writes WAVs, figures and samples.json to "
                             "--output=<folder>; name one (not the prior's own folder).")
  if pathlib.Path(output).resolve() == pathlib.Path(workdir).resolve():
    raise errors.ConfigError(f"--output={output} is the prior's own folder; sample to another.")
  config = run_config.saved_config(workdir, config)
  classifier_train.check_trained(config.eval.classifier_workdir)
  run = prior_targets.load_vqvae(config, with_data=False)
  prior_targets.check_vqvae(workdir, config, run)
  return config, run, restore(config, workdir, run.config)


def sample(config, workdir: str, output: str | None, overwrite: bool = False) -> dict:
  """`--mode=sample`: `sample.num_samples` samples at `sample.temperature` / `sample.snap` (of
  `sample.digit` when set) from the prior trained in `workdir`; WAVs, Figure 3 and their
  classifier scores (samples.json) go to the folder `output`, a new one (or, with `overwrite`, one
  replaced whole: `files.new_folder`), never into the workdir it reads. Samples are drawn,
  scored and dropped batch by batch (`measure_streamed`), so any count fits in memory. Needs only
  the prior, its VQ-VAE and the classifier (e.g. all three shipped), not the data."""
  config, run, state = open_for_sampling(config, workdir, output, prior.restore_prior)
  labels = sample_labels(config, config.sample.num_samples)
  decode = make_decoder(run, config.target.levels or run.config.rvq.levels)
  sample_fn = make_sampler(config, prior_targets.target_shape(config, run.config))
  scorer = Scorer(config, run)
  with files.new_folder(output, overwrite) as staging:
    batches = sample_batches(config, state, sample_fn, decode, labels, config.sample.temperature,
                             config.sample.snap, seed_offset=1 if config.sample.digit is None else
                             2 + config.sample.digit)
    measured, latents, specs = measure_streamed(scorer, batches, shown_count(config))
    heard = measured["judge"][0].argmax(-1)
    write_samples(config, staging, run, latents, specs, labels[:len(specs)], heard[:len(specs)])
    scores = scorer.score(requested=labels if realnvp.is_conditional(config.prior) else None,
                          measured=measured)
    scores.update(temperature=config.sample.temperature, snap=config.sample.snap,
                  digit=config.sample.digit)
    if jax.process_index() == 0:
      files.write_text(staging / "samples.json", json.dumps(scores, indent=2) + "\n")
  logging.info("samples: IS %.3f, histogram %s", scores["inception_score"],
               np.round(scores["class_histogram"], 3).tolist())
  return scores
