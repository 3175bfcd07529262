"""Listening examples: a few test recordings and their reconstructions by trained models, as WAVs
and one spectrogram figure per recording (docs/audio/, docs/figures/).

COMMAND:
  python -m rvq_jax.listening --models=pretrained/model5,pretrained/model6 \
      --clips=0_george_0,3_jackson_1,7_theo_3,9_yweweler_2 --out=docs
Writes <out>/audio/<clip>_original.wav, <out>/audio/<clip>_<model>.wav (8 kHz PCM16; each model
at its full bit rate through `codec.reconstruct`) and <out>/figures/listening_<clip>.png.
"""

from __future__ import annotations

import pathlib

from absl import app
from absl import flags
from absl import logging
import numpy as np

from rvq_jax import codec as codec_lib
from rvq_jax import data as data_lib
from rvq_jax import errors
from rvq_jax.configs import default
from rvq_jax.eval import figures


def write_examples(models: list[str], clips: list[str], config, out) -> list[pathlib.Path]:
  """For every clip name ('7_theo_3') of FSDD (found by `config.data`): the original and each
  model's reconstruction as WAVs, and their spectrograms in one figure. Returns the files written."""
  out, recordings = pathlib.Path(out), data_lib.find_recordings(config.data)
  codecs = {pathlib.Path(m).name: codec_lib.load_codec(config, m) for m in models}
  rate = next(iter(codecs.values())).sample_rate
  written = []
  for clip in clips:
    path = recordings / f"{clip}.wav"
    if not path.is_file():
      raise errors.MissingError(f"{path}: no such recording (--clips names files of --recordings).")
    original = codec_lib.read_audio(path, rate)
    rows = {"original": original}
    for name, codec in codecs.items():
      rows[name] = codec_lib.reconstruct(codec, original, codec.config.rvq.levels)
    for label, wave in rows.items():
      target = out / "audio" / f"{clip}_{label}.wav"
      target.parent.mkdir(parents=True, exist_ok=True)
      data_lib.write_wav(target, np.asarray(wave, np.float32), rate)
      written.append(target)
    audio_config = next(iter(codecs.values())).config.audio
    written.append(figures.save(
        figures.waveforms_figure(rows, audio_config.frame_length, audio_config.hop_length, rate,
                                 title=clip), out / "figures" / f"listening_{clip}.png"))
    logging.info("%s: %s", clip, ", ".join(str(p) for p in written[-len(rows) - 1:]))
  return written


FLAGS = flags.FLAGS


def main(argv):
  del argv
  config = default.get_config()
  config.data.data_dir = FLAGS.recordings
  write_examples(FLAGS.models, FLAGS.clips, config, FLAGS.out)


if __name__ == "__main__":
  flags.DEFINE_list("models", ["pretrained/model5"], "Trained workdirs or shipped weights.")
  flags.DEFINE_list("clips", ["0_george_0", "3_jackson_1", "7_theo_3", "9_yweweler_2"],
                    "FSDD recordings (test split: repetition index 0-4).")
  flags.DEFINE_string("recordings", None, "The FSDD recordings folder (default: $FSDD_DIR, else "
                      "the download cache).")
  flags.DEFINE_string("out", "docs", "Writes <out>/audio and <out>/figures.")
  app.run(main)
