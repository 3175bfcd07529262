"""Quality metrics in pure `jax.numpy` (waveforms, spectra, classifier outputs), and the
perceptual speech-coding measures PESQ and STOI from their reference libraries (host NumPy).

Waveform metrics take `lengths` so that zero padding past a recording's end is not scored.
Codebook perplexity / usage are `rvq_jax.models.rvq.codebook_metrics`.
"""

from __future__ import annotations

from typing import Sequence
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pesq as pesq_lib
import pystoi
import scipy.optimize

from rvq_jax import audio


def _length_mask(shape, lengths):
  if lengths is None:
    return jnp.ones(shape, jnp.float32)
  return (jnp.arange(shape[-1]) < jnp.asarray(lengths)[..., None]).astype(jnp.float32)


def si_sdr(reference: jax.Array, estimate: jax.Array, lengths: jax.Array | None = None,
           eps: float = 1e-8) -> jax.Array:
  """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019), per signal.

  Both signals are made zero-mean over their first `lengths` samples; the estimate is projected
  on the reference: target = <s_hat, s> s / |s|^2, SI-SDR = 10 log10(|target|^2 / |s_hat - target|^2).

  Args:
    reference, estimate: float [..., T].
    lengths: int [...] samples to score (default: all T).

  Returns:
    float32 [...] dB; +inf-like (about 10 log10(1/eps)) for identical signals.
  """
  mask = _length_mask(reference.shape, lengths)
  count = jnp.maximum(mask.sum(-1, keepdims=True), 1.0)
  s = (reference - (reference * mask).sum(-1, keepdims=True) / count) * mask
  e = (estimate - (estimate * mask).sum(-1, keepdims=True) / count) * mask
  alpha = (e * s).sum(-1, keepdims=True) / ((s * s).sum(-1, keepdims=True) + eps)
  target = alpha * s
  noise = e - target
  return 10 * jnp.log10(((target**2).sum(-1) + eps) / ((noise**2).sum(-1) + eps))


def _frame_mask(num_frames: int, hop: int, lengths):
  """float [..., frames]: frames whose centre lies inside the recording."""
  if lengths is None:
    return None
  centres = jnp.arange(num_frames) * hop
  return (centres < jnp.asarray(lengths)[..., None]).astype(jnp.float32)


def log_spectral_distance(reference: jax.Array, estimate: jax.Array, frame_length: int,
                          hop_length: int, lengths: jax.Array | None = None,
                          eps: float = 1e-8) -> jax.Array:
  """Log-spectral distance in dB, per signal: the mean over frames of
  sqrt(mean over bins of (10 log10(P_ref / P_est))^2), P = |STFT|^2 + eps.

  Args:
    reference, estimate: float [..., T]; T a multiple of hop_length.
    lengths: int [...] samples in each recording; frames centred past it are not scored.
  """
  p_ref = jnp.abs(audio.stft(reference, frame_length, hop_length))**2 + eps
  p_est = jnp.abs(audio.stft(estimate, frame_length, hop_length))**2 + eps
  per_frame = jnp.sqrt(jnp.mean((10 * jnp.log10(p_ref / p_est))**2, axis=-2))   # [..., frames]
  mask = _frame_mask(per_frame.shape[-1], hop_length, lengths)
  if mask is None:
    return per_frame.mean(-1)
  return (per_frame * mask).sum(-1) / jnp.maximum(mask.sum(-1), 1.0)


def multi_resolution_stft_distance(
    reference: jax.Array, estimate: jax.Array,
    resolutions: Sequence[tuple[int, int]] = ((64, 16), (128, 32), (256, 64)),
    eps: float = 1e-7) -> jax.Array:
  """Multi-resolution STFT distance (Yamamoto et al., 2020), per signal: the mean over
  (frame_length, hop) resolutions of spectral convergence |S - S_hat|_F / |S|_F plus the mean
  absolute log-magnitude difference. 0 for identical signals.

  Args:
    reference, estimate: float [..., T]; T a multiple of every hop.
  """
  total = 0.0
  for frame_length, hop in resolutions:
    s = jnp.abs(audio.stft(reference, frame_length, hop))
    s_hat = jnp.abs(audio.stft(estimate, frame_length, hop))
    convergence = (jnp.sqrt(jnp.sum((s - s_hat)**2, axis=(-2, -1))) /
                   (jnp.sqrt(jnp.sum(s**2, axis=(-2, -1))) + eps))
    log_mag = jnp.mean(jnp.abs(jnp.log(s + eps) - jnp.log(s_hat + eps)), axis=(-2, -1))
    total = total + convergence + log_mag
  return total / len(resolutions)


def inception_score(probabilities: jax.Array, eps: float = 1e-12) -> jax.Array:
  """exp(E_x KL(p(y|x) || p(y))) of class probabilities [N, C] (Salimans et al., 2016).

  1 when every prediction is the same distribution; C when predictions are confident and the
  classes balanced.
  """
  marginal = probabilities.mean(0, keepdims=True)
  kl = jnp.sum(probabilities * (jnp.log(probabilities + eps) - jnp.log(marginal + eps)), axis=-1)
  return jnp.exp(kl.mean())


def frechet_distance(features_a: jax.Array, features_b: jax.Array) -> jax.Array:
  """Fréchet distance between Gaussians fitted to two feature sets [N, F] and [M, F] (as FID):
  |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

  With Y = centred features / sqrt(count - 1) (so S = Y^T Y), Tr (S_a S_b)^(1/2) equals the sum of
  the singular values of Y_b Y_a^T [M, N]: one SVD, no square roots of products of covariances,
  which keeps float32 accurate (the distance of a set to itself is 0 to rounding).
  """
  mu_a, mu_b = features_a.mean(0), features_b.mean(0)
  y_a = (features_a - mu_a) / jnp.sqrt(features_a.shape[0] - 1.0)
  y_b = (features_b - mu_b) / jnp.sqrt(features_b.shape[0] - 1.0)
  cross = jnp.sum(jnp.linalg.svd(y_b @ y_a.T, compute_uv=False))
  return jnp.sum((mu_a - mu_b)**2) + jnp.sum(y_a**2) + jnp.sum(y_b**2) - 2 * cross


def griffin_lim(magnitude: jax.Array, frame_length: int, hop_length: int, iterations: int,
                rng: jax.Array) -> jax.Array:
  """Waveforms [..., frames * hop] whose STFT magnitude approaches `magnitude` [..., bins, frames]
  (Griffin & Lim, 1984), from random phase; the baseline for a magnitude-only codec."""
  phase = jax.random.uniform(rng, magnitude.shape, minval=-jnp.pi, maxval=jnp.pi)

  def body(_, spectrum):
    wave = audio.istft(spectrum, frame_length, hop_length)
    rebuilt = audio.stft(wave, frame_length, hop_length)
    return magnitude * jnp.exp(1j * jnp.angle(rebuilt))

  spectrum = jax.lax.fori_loop(0, iterations, body, magnitude * jnp.exp(1j * phase))
  return audio.istft(spectrum, frame_length, hop_length)


# ------------------------------------------------------------------ perceptual (host, libraries)
# ITU-T P.862 narrow-band PESQ (the `pesq` package) and STOI (Taal et al., 2011; `pystoi`) run on
# the host in NumPy. Many FSDD clips are shorter than these measures need (STOI: 30 frames of
# 25.6 ms of speech after silent frames are dropped; PESQ: an utterance it can detect), so each
# reports the mean over the files it can score, how many those are, and a corpus value over the
# whole set (PESQ: the test clips concatenated and cut into segments of P.862's recommended
# length; STOI: the concatenation).
def _trimmed(signals, lengths):
  signals = np.asarray(signals, np.float64)
  lengths = np.full(len(signals), signals.shape[-1]) if lengths is None else np.asarray(lengths)
  return [s[:n] for s, n in zip(signals, lengths)]


def pesq_nb(reference, estimate, lengths, sample_rate: int, segment_seconds: float) -> dict:
  """Narrow-band PESQ (MOS-LQO, -0.5..4.5) of estimates against references [N, T].

  Returns {'per_file_mean', 'files_scored', 'corpus', 'per_file'}: the mean over the files PESQ
  can score, their count, the mean over `segment_seconds`-long segments of the concatenated set,
  and each file's score (None where it cannot be scored).
  """
  refs, ests = _trimmed(reference, lengths), _trimmed(estimate, lengths)
  per_file = []
  for r, e in zip(refs, ests):
    try:
      per_file.append(float(pesq_lib.pesq(sample_rate, r, e, "nb")))
    except pesq_lib.PesqError:     # no utterance detected in a short or silent clip
      per_file.append(None)
  scores = [v for v in per_file if v is not None]
  ref_all, est_all = np.concatenate(refs), np.concatenate(ests)
  segment = int(segment_seconds * sample_rate)
  starts = range(0, max(len(ref_all) - segment // 2, 1), segment)
  corpus = [pesq_lib.pesq(sample_rate, ref_all[s:s + segment], est_all[s:s + segment], "nb")
            for s in starts]
  return {"per_file_mean": float(np.mean(scores)) if scores else float("nan"),
          "files_scored": len(scores), "corpus": float(np.mean(corpus)), "per_file": per_file}


def stoi(reference, estimate, lengths, sample_rate: int) -> dict:
  """STOI (0..1) of estimates against references [N, T]: {'per_file_mean', 'files_scored',
  'corpus', 'per_file'} (the mean over the files long enough to score, their count, the STOI of
  the concatenated set, and each file's score, None where too short)."""
  refs, ests = _trimmed(reference, lengths), _trimmed(estimate, lengths)
  per_file = []
  for r, e in zip(refs, ests):
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      value = pystoi.stoi(r, e, sample_rate)
    too_short = any("Not enough STFT frames" in str(w.message) for w in caught)
    per_file.append(None if too_short else float(value))
  scores = [v for v in per_file if v is not None]
  corpus = pystoi.stoi(np.concatenate(refs), np.concatenate(ests), sample_rate)
  return {"per_file_mean": float(np.mean(scores)) if scores else float("nan"),
          "files_scored": len(scores), "corpus": float(corpus), "per_file": per_file}


def expected_calibration_error(probabilities: jax.Array, labels: jax.Array,
                               num_bins: int = 15) -> jax.Array:
  """ECE (Guo et al., 2017) of class probabilities [N, C] for integer labels [N]: the
  example-weighted mean over `num_bins` equal-width confidence bins of |accuracy - confidence|,
  confidence being the top probability. 0 for a calibrated classifier."""
  confidence = probabilities.max(-1)
  correct = (probabilities.argmax(-1) == labels).astype(jnp.float32)
  bins = jnp.clip((confidence * num_bins).astype(jnp.int32), 0, num_bins - 1)
  # sum_b (n_b / N) |acc_b - conf_b| = sum_b |sum over bin b of (correct - confidence)| / N
  gap = jnp.zeros(num_bins).at[bins].add(correct - confidence)
  return jnp.sum(jnp.abs(gap)) / probabilities.shape[0]


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
  """Temperature scaling (Guo et al., 2017): the T > 0 minimising the mean negative
  log-likelihood of softmax(logits / T) [N, C] for labels [N] (held-out data), found by scipy's
  bounded scalar search over log T in [log 0.05, log 20]."""
  logits = np.asarray(logits, np.float64)
  labels = np.asarray(labels)

  def nll(log_t):
    z = logits / np.exp(log_t)
    z = z - z.max(-1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(-1)) - z[np.arange(len(labels)), labels]))

  return float(np.exp(scipy.optimize.minimize_scalar(
      nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded").x))
