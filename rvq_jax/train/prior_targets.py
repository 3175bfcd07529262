"""The RealNVP prior's data: latent images of a trained VQ-VAE and the constants of its target space.

Targets are latent images of a trained VQ-VAE (`config.vqvae_workdir`): by default the quantized
latents [N, 32, 32, 128] (sums of code vectors, `target.levels` of them), or the encoder's
continuous output; optionally projected on the leading `target.projection_dim` principal directions
of the training latents (a fixed linear map; `unproject` maps samples back for the decoder).

Dequantization: quantized latents take a finite set of values, on which a continuous density can
grow without bound, so each training batch gets fresh Gaussian noise of std
`target.dequantization * spacing`, where `spacing` is the median distance from a distinct target
vector to its nearest distinct neighbour divided by sqrt(C) (a per-dimension spacing). Validation
and test use one fixed draw of that noise (`fixed_noise_targets`), so their bits/dim are comparable
across epochs; every bits/dim is of the noisy (dequantized) target and is only comparable at the
same noise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rvq_jax import audio
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax.data import download
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import rngs
from rvq_jax.train import steps
from rvq_jax.train import vqvae as vqvae_train
from rvq_jax.train import writer as writer_lib


# ------------------------------------------------------------------ the VQ-VAE whose latents we model
@dataclasses.dataclass(frozen=True)
class VQVAERun:
  """A trained VQ-VAE: its config (from the run's config.json), state, data and spectrograms."""
  config: ml_collections.ConfigDict
  state: steps.TrainState
  dataset: Any
  specs: dict


def load_vqvae(config) -> VQVAERun:
  """The VQ-VAE in `config.vqvae_workdir`, with its dataset (data location from the prior's config
  when set there)."""
  workdir = pathlib.Path(config.vqvae_workdir)
  if not (workdir / "config.json").exists():
    raise errors.MissingError(
        f"config.vqvae_workdir={str(workdir)!r} holds no trained VQ-VAE (no config.json). Train one "
        f"first: python -m rvq_jax.main --config=configs/model5.py --workdir={workdir}")
  vq_config = vqvae_train.saved_vqvae_config(workdir, config.data)
  state = vqvae_train.restore_state(vq_config, workdir)
  _warn_if_unfinished(workdir, int(state.step))
  dataset = data_lib.load_dataset(vq_config.data)
  specs = {s: audio.prepare_spectrograms(dataset[s].waveforms, vq_config.audio)
           for s in data_lib.SPLITS}
  return VQVAERun(vq_config, state, dataset, specs)


def _warn_if_unfinished(workdir: pathlib.Path, step: int) -> None:
  """Warns when the VQ-VAE run stopped before the end its last session planned."""
  sessions = writer_lib.read_run_info(workdir)
  planned = sessions[-1].get("total_steps") if sessions else None
  if planned is not None and step < planned:
    logging.warning("The VQ-VAE in %s is half-trained: its checkpoint is at step %d of %d. The "
                    "prior will model an unfinished model; finish it first (run its training "
                    "command again) for results that hold.", workdir, step, planned)


def _codes_cache_path(config, run: VQVAERun) -> pathlib.Path:
  ckpt = (pathlib.Path(config.vqvae_workdir) / "checkpoints").absolute()
  key = hashlib.sha256(json.dumps([str(ckpt), int(run.state.step), ckpt.stat().st_mtime_ns,
                                   {s: len(run.dataset[s]) for s in data_lib.SPLITS}]).encode())
  return download.cache_root(config.data) / "prior_codes" / f"{key.hexdigest()[:16]}.npz"


def latent_codes(config, run: VQVAERun) -> dict[str, np.ndarray]:
  """int16 codes [N, h, w, L] of every split, cached per VQ-VAE checkpoint."""
  path = _codes_cache_path(config, run)
  if path.exists():
    with np.load(path) as cached:
      return {s: cached[s] for s in data_lib.SPLITS}
  model = vqvae.make_model(run.config)
  encode = jax.jit(lambda x: vqvae.encode_codes(model, run.state.params,
                                                run.state.codebook.embed, x,
                                                block_rows=run.config.rvq.block_rows))
  codes = {s: np.asarray(data_lib.map_batches(lambda x, _: encode(x), run.specs[s],
                                          run.config.train.eval_batch_size)).astype(np.int16)
           for s in data_lib.SPLITS}
  data_lib.write_npz_atomically(path, codes)
  return codes


def vqvae_latents(config, run: VQVAERun) -> dict[str, np.ndarray]:
  """float32 latents [N, h, w, D] per split: quantized (first `target.levels` levels) or the
  encoder's continuous output."""
  if config.target.kind == "continuous":
    model = vqvae.make_model(run.config)
    encode = jax.jit(lambda x: model.apply(run.state.params, x, method=vqvae.VQVAE.encode))
    return {s: np.asarray(data_lib.map_batches(lambda x, _: encode(x), run.specs[s],
                                           run.config.train.eval_batch_size))
            for s in data_lib.SPLITS}
  levels = config.target.levels or run.config.rvq.levels
  embed = run.state.codebook.embed
  decode = jax.jit(lambda c: rvq.decode_codes(embed, c, levels))
  return {s: np.asarray(data_lib.map_batches(lambda c, _: decode(c.astype(jnp.int32)), codes,
                                         run.config.train.eval_batch_size))
          for s, codes in latent_codes(config, run).items()}


# ------------------------------------------------------------------ targets
def fit_projection(latents: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, float]:
  """PCA of the vectors of `latents` [..., D]: (center [D], basis [D, dim] orthonormal columns,
  fraction of variance kept)."""
  flat = latents.reshape(-1, latents.shape[-1]).astype(np.float64)
  center = flat.mean(0)
  eigenvalues, vectors = np.linalg.eigh(np.cov((flat - center).T))
  order = np.argsort(eigenvalues)[::-1]
  kept = float(eigenvalues[order[:dim]].sum() / eigenvalues.sum())
  return center.astype(np.float32), vectors[:, order[:dim]].astype(np.float32), kept


def project(latents, center, basis):
  """[..., D] -> [..., dim] coordinates on the principal directions."""
  return (latents - center) @ basis


def unproject(targets, center, basis):
  """[..., dim] -> [..., D] (the closest point of the principal subspace)."""
  return targets @ basis.T + center


def latent_spacing(targets: np.ndarray, num_queries: int, num_references: int,
                   seed: int) -> float:
  """Median distance from a distinct target vector to its nearest distinct neighbour, divided by
  sqrt(C): the per-dimension spacing of the discrete set the targets live on."""
  rng = np.random.default_rng(seed)
  flat = targets.reshape(-1, targets.shape[-1])
  # Distinct vectors of a random subset (np.unique over millions of rows is slow).
  subset = rng.choice(len(flat), min(len(flat), 10 * (num_queries + num_references)), replace=False)
  flat = np.unique(flat[subset], axis=0)
  refs = flat[rng.choice(len(flat), min(num_references, len(flat)), replace=False)]
  queries = flat[rng.choice(len(flat), min(num_queries, len(flat)), replace=False)]
  refs = refs.astype(np.float64)
  ref_norms = (refs**2).sum(1)
  nearest = []
  for chunk in np.array_split(queries.astype(np.float64), max(1, len(queries) // 256)):
    d2 = (chunk**2).sum(1)[:, None] - 2 * chunk @ refs.T + ref_norms[None, :]
    d2[d2 <= 1e-9 * ref_norms.mean()] = np.inf   # the vector itself (or an identical copy)
    nearest.append(np.sqrt(d2.min(1)))
  return float(np.median(np.concatenate(nearest)) / math.sqrt(targets.shape[-1]))


@dataclasses.dataclass(frozen=True)
class Targets:
  """The prior's data: per split (targets float32 [N, H, W, C], digit labels int32 [N]), and the
  constants of the target space: `stats` (mean, std [C] for standardisation; noise_std [];
  center [D] and basis [D, C] when projected), `spacing`, `variance_kept`."""
  splits: dict[str, tuple[np.ndarray, np.ndarray]]
  stats: dict[str, np.ndarray]
  spacing: float
  variance_kept: float

  @property
  def shape(self) -> tuple[int, int, int]:
    return tuple(self.splits["train"][0].shape[1:])


def prepare_targets(config, run: VQVAERun) -> Targets:
  """Latents of `run` -> the prior's targets and their statistics (training split only)."""
  t = config.target
  latents = vqvae_latents(config, run)
  stats, kept = {}, 1.0
  if t.projection_dim:
    center, basis, kept = fit_projection(latents["train"], t.projection_dim)
    latents = {s: project(v, center, basis) for s, v in latents.items()}
    stats.update(center=center, basis=basis)
  train = latents["train"]
  channels = train.shape[-1]
  if t.preprocess == "standardize":
    std = train.reshape(-1, channels).std(0)
    stats.update(mean=train.reshape(-1, channels).mean(0),
                 std=np.where(std > 1e-6, std, 1.0).astype(np.float32))
  else:
    stats.update(mean=np.zeros(channels, np.float32), std=np.ones(channels, np.float32))
  spacing = latent_spacing(train, t.spacing_queries, t.spacing_references, config.seed)
  stats["noise_std"] = np.float32(t.dequantization * spacing)
  splits = {s: (v.astype(np.float32), run.dataset[s].digits.astype(np.int32))
            for s, v in latents.items()}
  logging.info("prior targets %s (%s, %.4f of the variance kept); spacing %.4f, dequantization "
               "noise std %.4f", train.shape[1:], t.kind, kept, spacing, stats["noise_std"])
  return Targets(splits, {k: np.asarray(v, np.float32) for k, v in stats.items()}, spacing, kept)


def fixed_noise_targets(config, targets: Targets, split: str) -> np.ndarray:
  """`split`'s targets plus one fixed draw of the dequantization noise (seeded by config.seed)."""
  x = targets.splits[split][0]
  key = jax.random.fold_in(jax.random.wrap_key_data(rngs.seed_stream(config.seed,
                                                                     rngs.HELD_OUT_NOISE)),
                           data_lib.SPLITS.index(split))
  return x + targets.stats["noise_std"] * np.asarray(jax.random.normal(key, x.shape))
