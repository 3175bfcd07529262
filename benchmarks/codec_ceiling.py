"""How good a model's codes could ever sound (issue 32): PESQ-nb of the test split through the
STFT and its inverse alone, through the autoencoder with its latents unquantized (no coding of any
rate goes past this), and quantized to each level count of `--levels`, with the latent residual.

COMMAND (from the repository root; results go to the model's config docstring by hand):
  python benchmarks/codec_ceiling.py --workdir=pretrained/model7

A codec built on these weights is bounded by the 'continuous' row at any bit rate: if it lies
below another codec's PESQ-nb at some rate, entropy coding alone cannot reach that codec there.
Clips are whole test recordings padded to the model's input length, scored over their own length.
"""

import sys

from absl import app
from absl import flags
import jax.numpy as jnp
from ml_collections import config_dict
import numpy as np

sys.path.insert(0, ".")
from rvq_jax import audio  # noqa: E402  pylint: disable=g-import-not-at-top
from rvq_jax import codec as codec_lib  # noqa: E402
from rvq_jax import data as data_lib  # noqa: E402
from rvq_jax.eval import metrics  # noqa: E402
from rvq_jax.models import rvq  # noqa: E402
from rvq_jax.models import vqvae  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", "pretrained/model7", "The codec's weights.")
_CLIPS = flags.DEFINE_integer("clips", None, "Score only the first n test clips (default: all).")
_LEVELS = flags.DEFINE_list("levels", ["1", "2", "4", "8"], "Level counts to score beside.")
_BATCH = flags.DEFINE_integer("batch_size", 50, "Clips per forward pass.")


def main(argv):
  del argv
  codec = codec_lib.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}),
                               _WORKDIR.value)
  config = codec.config
  test = data_lib.load_dataset(config.data)["test"]
  count = _CLIPS.value or len(test)
  waves, lengths = np.asarray(test.waveforms[:count]), [int(n) for n in test.lengths[:count]]
  model = vqvae.make_model(config)

  def pcm(spec):   # spectrograms [B, H, W, 2] -> PCM [B, n] at the recordings' scale
    return np.asarray(audio.to_waveform(spec, config.audio))[:, :waves.shape[1]] * codec.scale

  def decoded(z):
    return vqvae.split_decoder_output(
        model.apply(codec.params, z, method="decode").astype(jnp.float32), config)[0]

  rows = {"STFT and inverse": [], "continuous latents": []}
  residual = {int(l): [] for l in _LEVELS.value}
  rows.update({f"{l} levels": [] for l in residual})
  power = []
  for s in range(0, count, _BATCH.value):
    spec = audio.to_spectrogram(jnp.asarray(waves[s:s + _BATCH.value]), config.audio)
    z = model.apply(codec.params, spec, method="encode").astype(jnp.float32)
    flat = z.reshape(-1, z.shape[-1])
    power.append(np.asarray((flat ** 2).sum(-1)))
    rows["STFT and inverse"].append(pcm(spec))
    rows["continuous latents"].append(pcm(decoded(z)))
    for levels in residual:
      q = rvq.quantize(codec.embed, flat, levels, block_rows=config.rvq.block_rows).quantized
      residual[levels].append(np.asarray(((q - flat) ** 2).sum(-1)))
      rows[f"{levels} levels"].append(pcm(decoded(q.reshape(z.shape))))
  print(f"{_WORKDIR.value}: {count} test clips; latent power (mean squared norm) "
        f"{np.concatenate(power).mean():.4f}")
  print("| decoded from | PESQ-nb | latent residual (mean squared norm) |\n|---|---|---|")
  for name, parts in rows.items():
    pesq = metrics.pesq_nb(waves * codec.scale, np.concatenate(parts), lengths, 8000, 8.0)
    levels = int(name.split()[0]) if name.endswith("levels") else None
    extra = f"{np.concatenate(residual[levels]).mean():.4f}" if levels else ""
    print(f"| {name} | {pesq['per_file_mean']:.3f} | {extra} |", flush=True)


if __name__ == "__main__":
  app.run(main)
