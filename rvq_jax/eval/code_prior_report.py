"""Sampling the autoregressive anchor (rvq_jax.train.code_prior) into audio, and scoring it exactly
as the RealNVP prior is scored (`prior_report.Scorer`: both digit classifiers, the ceiling, the
size-matched real reference, memorisation), so that the two priors' records sit side by side.

Path of a sample: the digit's class token -> the transformer's codes (softmax temperature T) ->
`rvq.decode_codes` (the sum of the chosen code vectors, the modelled levels) -> the VQ-VAE's decoder
-> spectrogram -> WAV. Its ceiling is the VQ-VAE itself: the real held-out clips' codes decoded the
same way.
"""

from __future__ import annotations

import json
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from rvq_jax import files
from rvq_jax import run_config
from rvq_jax.eval import prior_report
from rvq_jax.models import code_transformer
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import classifier as classifier_train
from rvq_jax.train import code_prior
from rvq_jax.train import prior_targets
from rvq_jax.train import rngs

RECORD = "prior_eval.json"   # the same name and layout as the flow's record


def make_code_decoder(run: prior_targets.VQVAERun, levels: int):
  """Jitted `decode(codes int32 [B, h, w, levels]) -> spectrograms [B, H, W, 2]`."""
  model = vqvae.make_model(run.config)
  params, embed = run.state.params, run.state.codebook.embed

  @jax.jit
  def decode(codes):
    z = rvq.decode_codes(embed, codes, levels)
    out = model.apply(params, z, method=vqvae.VQVAE.decode)
    return vqvae.split_decoder_output(out.astype(jnp.float32), run.config)[0]

  return decode


def make_sampler(config, vq_config):
  """Jitted `sample(params, rng, labels [B], temperature) -> codes int32 [B, h, w, levels]`."""
  model = code_prior.make_model(config, vq_config, decode=True)
  h, w, _ = prior_targets.target_shape(config, vq_config)

  @jax.jit
  def sample(params, rng, labels, temperature):
    tokens = code_transformer.sample(model, params, rng, labels, temperature)
    return code_transformer.from_sequence(tokens, h, w)

  return sample


def sample_batches(config, state, sample, decode, labels, temperature: float,
                   seed_offset: int = 0):
  """Yields (codes [b, h, w, levels], spectrograms [b, H, W, 2]) for consecutive batches of the
  digits `labels` [N] (`sample.batch_size` each; batch i draws from fold_in(key, its start))."""
  key = jax.random.fold_in(jax.random.wrap_key_data(rngs.seed_stream(config.seed, rngs.SAMPLES)),
                           seed_offset)
  b = config.sample.batch_size
  for start in range(0, len(labels), b):
    c = sample(state.params, jax.random.fold_in(key, start), jnp.asarray(labels[start:start + b]),
               temperature)
    yield np.asarray(c), np.asarray(decode(c))


def draw_samples(config, state, sample, decode, labels, temperature: float, seed_offset: int = 0):
  """All of `sample_batches` at once: (codes [N, h, w, levels], spectrograms [N, H, W, 2])."""
  codes, specs = zip(*sample_batches(config, state, sample, decode, labels, temperature,
                                     seed_offset))
  return np.concatenate(codes), np.concatenate(specs)


def _decode_all(decode, codes: np.ndarray) -> np.ndarray:
  return np.concatenate([np.asarray(decode(jnp.asarray(codes[i:i + 100], jnp.int32)))
                         for i in range(0, len(codes), 100)])


def _write(config, out: pathlib.Path, run, codes, specs, labels, heard, temperature) -> None:
  prior_report.write_samples(config, out, run, codes, specs, labels, heard, conditional=True,
                             setting=f"autoregressive anchor, T={temperature}")


def evaluate_code_prior(config, workdir, state: code_prior.CodePriorState, splits,
                        run: prior_targets.VQVAERun) -> dict:
  """Bits per code, references and sample scores at every `sample.temperatures`; writes
  <workdir>/prior_eval.json, WAVs and the class grid (at `sample.temperature`)."""
  workdir = pathlib.Path(workdir)
  levels = config.target.levels or run.config.rvq.levels
  h, w, _ = prior_targets.target_shape(config, run.config)
  decode = make_code_decoder(run, levels)
  scorer = prior_report.Scorer(config, run)
  bits_fn = code_prior.make_bits_fn(config, run.config)
  codes = {s: np.asarray(code_transformer.from_sequence(t, h, w)) for s, (t, _) in splits.items()}
  labels = {s: lab for s, (_, lab) in splits.items()}
  result = {
      "step": int(state.step),
      "kind": "code_transformer",
      "target": {"vqvae_workdir": config.vqvae_workdir, "levels": levels,
                 "codes": int(run.config.rvq.codes), "grid": [h, w],
                 "rows_per_token": config.transformer.rows_per_token},
      "transformer": config.transformer.to_dict(),
      "sampling": {"temperature": float(config.sample.temperature)},
      # Exact negative log-likelihood of the held-out codes.
      "bits_per_code": {s: code_prior.mean_bits_per_code(bits_fn, state.params, *splits[s],
                                                         config.train.eval_batch_size)
                        for s in ("validation", "test")},
      "references": {"real_test": scorer.score(run.specs["test"], labels["test"]),
                     "real_heldout": scorer.score(run.specs["validation"], labels["validation"]),
                     # The VQ-VAE's own reconstructions of the held-out clips: the best any prior
                     # over these codes can do.
                     "ceiling": scorer.score(_decode_all(decode, codes["validation"]),
                                             labels["validation"])},
      "samples": [],
  }
  requested = prior_report.sample_labels_for_digits(config.sample.num_samples, config.sample.digit)
  sample_fn = make_sampler(config, run.config)
  for temperature in config.sample.temperatures:
    sampled, specs = draw_samples(config, state, sample_fn, decode, requested, temperature)
    measured = scorer.measure(specs)
    row = {"temperature": float(temperature),
           **scorer.score(requested=requested, measured=measured)}
    # Copies: a sample whose codes equal a training clip's at the first level.
    train_first = {c.tobytes() for c in codes["train"][..., 0]}
    row["copied_first_level_fraction"] = float(np.mean(
        [c.tobytes() in train_first for c in sampled[..., 0]]))
    result["samples"].append(row)
    logging.info("anchor samples T=%.2f: IS %.3f, FD %.1f, requested digit %.3f", temperature,
                 row["inception_score"], row["frechet_distance"],
                 row["requested_digit_accuracy"])
    if temperature == config.sample.temperature:
      _write(config, workdir, run, sampled, specs, requested, measured["judge"][0].argmax(-1),
             temperature)
  if jax.process_index() == 0:
    files.write_text(workdir / RECORD, json.dumps(result, indent=2) + "\n")
  return result


def evaluate(config, workdir: str, output: str | None = None) -> dict:
  """`--mode=evaluate`: re-score the anchor trained in `workdir` (its saved config)."""
  config = run_config.saved_config(workdir, config)
  out = run_config.record_folder(workdir, output)
  classifier_train.check_trained(config.eval.classifier_workdir)
  run = prior_targets.load_vqvae(config)
  prior_targets.check_vqvae(workdir, config, run)
  state = code_prior.restore_code_prior(config, workdir, run.config)
  return evaluate_code_prior(config, out, state, code_prior.split_sequences(config, run), run)


def sample(config, workdir: str, output: str | None, overwrite: bool = False) -> dict:
  """`--mode=sample`: `sample.num_samples` samples at `sample.temperature` (of `sample.digit`
  when set) into the folder `output` (new, or replaced whole with `overwrite`): WAVs, the class
  grid and samples.json, drawn and scored batch by batch. Needs only the anchor, its VQ-VAE and
  the classifiers, not the data."""
  config, run, state = prior_report.open_for_sampling(config, workdir, output,
                                                      code_prior.restore_code_prior)
  labels = prior_report.sample_labels_for_digits(config.sample.num_samples, config.sample.digit)
  decode = make_code_decoder(run, config.target.levels or run.config.rvq.levels)
  scorer = prior_report.Scorer(config, run)
  with files.new_folder(output, overwrite) as staging:
    batches = sample_batches(config, state, make_sampler(config, run.config), decode, labels,
                             config.sample.temperature, seed_offset=1)
    measured, codes, specs = prior_report.measure_streamed(scorer, batches,
                                                           prior_report.shown_count(config))
    _write(config, staging, run, codes, specs, labels[:len(specs)],
           measured["judge"][0].argmax(-1)[:len(specs)], config.sample.temperature)
    scores = scorer.score(requested=labels, measured=measured)
    scores.update(temperature=config.sample.temperature, digit=config.sample.digit)
    if jax.process_index() == 0:
      files.write_text(staging / "samples.json", json.dumps(scores, indent=2) + "\n")
  return scores
