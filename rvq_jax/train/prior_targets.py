"""The RealNVP prior's data: latent images of a trained VQ-VAE and the constants of its target space.

Targets are latent images of a trained VQ-VAE (`config.vqvae_workdir`): by default the quantized
latents [N, 32, 32, 128] (sums of code vectors, `target.levels` of them), or the encoder's
continuous output; optionally projected on the leading `target.projection_dim` principal directions
of the training latents (a fixed linear map; `unproject` maps samples back for the decoder).

Dequantization and the likelihood bound: quantized latents take a finite set of values, on which a
continuous density can grow without bound. The targets are therefore snapped onto a grid of cell
width `cell_width` (the discrete variable the prior models; `distinct_cells` says how many of the
distinct latent vectors keep a cell of their own, i.e. how nearly the grid is as fine as the
codes), and each training batch gets fresh noise of std `target.dequantization * spacing`, where
`spacing` is the median distance from a distinct target vector to its nearest distinct neighbour
divided by sqrt(C) (a per-dimension spacing): uniform over the target's grid cell (the default;
the cell's width is sqrt(12) x that std) or Gaussian of that std.

Held-out targets get one fixed draw of *uniform* cell noise u (`fixed_noise_targets`), whatever
the training noise, so their bits/dim is a bound on the discrete latents (Theis et al., 2016; Ho et
al., 2019): P(x) = integral of p over x's cell, and by Jensen's inequality
    -log2 P(x) <= E_u[-log2 p(x + u)] - D log2(cell_width),
so `realnvp.discrete_bits_per_dim` = differential bits/dim - log2(cell_width) bounds the
entropy of the gridded latents from above, in any units, for any flow (a Gaussian-trained one too,
only less tightly). The differential bits/dim of Gaussian-noised targets alone is no such bound
(it depends on units and goes negative); it is logged only as the Gaussian runs' training loss,
named `noisy_cross_entropy`.
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
from rvq_jax import run_config
from rvq_jax.data import download
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import checkpoints
from rvq_jax.train import rngs
from rvq_jax.train import steps
from rvq_jax.train import vqvae as vqvae_train
from rvq_jax.train import writer as writer_lib


# ------------------------------------------------------------------ the VQ-VAE whose latents we model
@dataclasses.dataclass(frozen=True)
class VQVAERun:
  """A trained VQ-VAE: its config (from the run's config.json), state, data scale (the model sees
  waveforms / scale) and, when loaded with its data, the dataset and spectrograms per split."""
  config: ml_collections.ConfigDict
  state: steps.TrainState
  scale: float
  dataset: Any = None
  specs: dict | None = None


def load_vqvae(config, with_data: bool = True) -> VQVAERun:
  """The VQ-VAE in `config.vqvae_workdir` (a run or shipped weights), with its dataset (data
  location from the prior's config when set there) unless `with_data` is False: sampling needs
  only the decoder, and shipped weights record their data scale."""
  workdir = run_config.project_path(config.vqvae_workdir)
  if not (workdir / "config.json").exists():
    raise errors.MissingError(
        f"config.vqvae_workdir={str(workdir)!r} holds no trained VQ-VAE (no config.json). Train one "
        f"first: python -m rvq_jax.main --config=configs/model5.py --workdir={workdir}")
  vq_config, state, scale = vqvae_train.load_trained(workdir, config.data)
  _warn_if_unfinished(workdir, int(state.step))
  if not with_data:
    return VQVAERun(vq_config, state, scale)
  dataset = data_lib.load_dataset(vq_config.data)
  specs = {s: audio.prepare_spectrograms(dataset[s].waveforms, vq_config.audio)
           for s in data_lib.SPLITS}
  return VQVAERun(vq_config, state, scale, dataset, specs)


def vqvae_fingerprint(run: VQVAERun) -> str:
  """The digest of the VQ-VAE's weights (`checkpoints.weights_digest`): a prior records it when it
  is trained and exported, and refuses any other VQ-VAE (`check_vqvae`)."""
  return checkpoints.weights_digest(checkpoints.state_weights_tree(run.state))


def check_vqvae(workdir, config, run: VQVAERun) -> None:
  """Raises WorkdirError when the prior (or anchor) in `workdir` was trained on another VQ-VAE
  than `run`, loaded from `config.vqvae_workdir` (the fingerprint in its weights' metadata, or in its run_info.json); a record with
  no fingerprint (trained before they were kept) is not checked."""
  metadata = checkpoints.read_weights_metadata(workdir) or {}
  expected = metadata.get("vqvae_sha256")
  if expected is None:
    sessions = writer_lib.read_run_info(workdir)
    expected = next((s["vqvae_sha256"] for s in reversed(sessions) if "vqvae_sha256" in s), None)
  if expected is not None and expected != vqvae_fingerprint(run):
    raise errors.WorkdirError(
        f"{workdir} was trained on another VQ-VAE than vqvae_workdir={config.vqvae_workdir!r} (its "
        "weights' fingerprint differs); set --config.vqvae_workdir to the VQ-VAE it was trained "
        "on (its config.json names it).")


def target_shape(config, vq_config) -> tuple[int, int, int]:
  """(h, w, C) of the prior's targets: the VQ-VAE's latent grid, C = `target.projection_dim` or
  the latent size."""
  frames = audio.spectrogram_shape(vq_config.data.max_samples, vq_config.audio)[1]
  return (vqvae.latent_rows(vq_config), frames // vqvae.downsampling(vq_config),
          config.target.projection_dim or vq_config.model.latent_dim)


def stats_template(config, vq_config) -> dict[str, np.ndarray]:
  """Zeros shaped like `Targets.stats` (to restore a prior without preparing its targets)."""
  channels = target_shape(config, vq_config)[-1]
  stats = {"mean": np.zeros(channels, np.float32), "std": np.ones(channels, np.float32),
           "noise_std": np.float32(1.0), "cell_width": np.float32(1.0)}
  if config.target.projection_dim:
    latent = vq_config.model.latent_dim
    stats.update(center=np.zeros(latent, np.float32),
                 basis=np.zeros((latent, channels), np.float32))
  return stats


def _warn_if_unfinished(workdir: pathlib.Path, step: int) -> None:
  """Warns when the VQ-VAE run stopped before the end its last session planned."""
  sessions = writer_lib.read_run_info(workdir)
  planned = sessions[-1].get("total_steps") if sessions else None
  if planned is not None and step < planned:
    logging.warning("The VQ-VAE in %s is half-trained: its checkpoint is at step %d of %d. The "
                    "prior will model an unfinished model; finish it first (run its training "
                    "command again) for results that hold.", workdir, step, planned)


def _codes_cache_path(config, run: VQVAERun) -> pathlib.Path:
  # The run's checkpoints, or the weights file of an exported model (pretrained/<name>).
  ckpt = (pathlib.Path(config.vqvae_workdir) / "checkpoints").absolute()
  if not ckpt.exists():
    ckpt = ckpt.parent / checkpoints.WEIGHTS_FILE
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
  """The prior's data: per split (targets float32 [N, H, W, C] snapped to the grid, digit labels
  int32 [N]), and the constants of the target space: `stats` (mean, std [C] for standardisation;
  noise_std [] and cell_width [] in target units; center [D] and basis [D, C] when projected),
  `spacing`, `variance_kept`, `distinct_cells` (see `distinct_cells`)."""
  splits: dict[str, tuple[np.ndarray, np.ndarray]]
  stats: dict[str, np.ndarray]
  spacing: float
  variance_kept: float
  distinct_cells: float

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
  stats["cell_width"] = np.float32(UNIFORM_WIDTH_PER_STD * stats["noise_std"])
  distinct = distinct_cells(train, float(stats["cell_width"]), t.spacing_queries * 100,
                            config.seed)
  splits = {s: (snap_to_grid(v, stats["cell_width"]), run.dataset[s].digits.astype(np.int32))
            for s, v in latents.items()}
  logging.info("prior targets %s (%s, %.4f of the variance kept); spacing %.4f, %s noise std "
               "%.4f, grid cell %.4f (%.4f of the distinct latent vectors keep their own cell)",
               train.shape[1:], t.kind, kept, spacing, t.dequantization_noise, stats["noise_std"],
               stats["cell_width"], distinct)
  return Targets(splits, {k: np.asarray(v, np.float32) for k, v in stats.items()}, spacing, kept,
                 distinct)


# A uniform distribution of width w has std w / sqrt(12).
UNIFORM_WIDTH_PER_STD = math.sqrt(12.0)


def snap_to_grid(x: np.ndarray, cell_width: float) -> np.ndarray:
  """x [..., C] -> the centres of their cells on the grid cell_width * Z^C (float32)."""
  return (cell_width * np.round(np.asarray(x, np.float64) / cell_width)).astype(np.float32)


def distinct_cells(targets: np.ndarray, cell_width: float, max_vectors: int, seed: int) -> float:
  """Of the distinct vectors among (a random subset of `max_vectors` of) `targets` [..., C], the
  fraction whose grid cell holds no other: 1.0 means the snapped latents lose no code path."""
  rng = np.random.default_rng(seed)
  flat = targets.reshape(-1, targets.shape[-1])
  flat = np.unique(flat[rng.choice(len(flat), min(len(flat), max_vectors), replace=False)], axis=0)
  _, counts = np.unique(np.round(flat.astype(np.float64) / cell_width).astype(np.int64), axis=0,
                        return_counts=True)
  return float((counts == 1).sum() / len(flat))


def fixed_noise_targets(config, targets: Targets, split: str, kind: str = "uniform") -> np.ndarray:
  """`split`'s targets plus one fixed draw (seeded by config.seed) of dequantization noise: by
  default uniform over their grid cells, the held-out set whose bits/dim bounds the discrete
  latents'."""
  x = targets.splits[split][0]
  key = jax.random.fold_in(jax.random.wrap_key_data(rngs.seed_stream(config.seed,
                                                                     rngs.HELD_OUT_NOISE)),
                           data_lib.SPLITS.index(split))
  return x + np.asarray(dequantization_noise(key, x.shape, kind, targets.stats))


def dequantization_noise(key, shape, kind: str, stats) -> jax.Array:
  """Noise [shape] added to grid-snapped targets: 'uniform' over the cell (width
  stats['cell_width']) or 'gaussian' of std stats['noise_std']."""
  if kind == "uniform":
    return stats["cell_width"] * (jax.random.uniform(key, shape) - 0.5)
  if kind == "gaussian":
    return stats["noise_std"] * jax.random.normal(key, shape)
  raise ValueError(f"Unknown target.dequantization_noise {kind!r}")


def augmentation_std(config, stats) -> jax.Array:
  """Per-channel std [C] of the training noise augmentation (target.noise_augmentation x each
  channel's training std, in target units); zeros when it is off."""
  return config.target.noise_augmentation * jnp.asarray(stats["std"])


def training_noise(config, key, shape, stats) -> jax.Array:
  """All the noise a training target [shape] gets: dequantization over its cell plus the optional
  Gaussian noise augmentation (`augmentation_std`)."""
  noise = dequantization_noise(key, shape, config.target.dequantization_noise, stats)
  if config.target.noise_augmentation > 0:   # its own stream: runs without it draw as before
    aug_key = jax.random.fold_in(key, 1)
    noise = noise + augmentation_std(config, stats) * jax.random.normal(aug_key, shape)
  return noise
