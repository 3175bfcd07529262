"""Default configuration: every field the project reads, documented. Other configs start here.

COMMAND (Figure 1 of the original report, magnitude and phase of one "nine"):
  python -m rvq_jax.main --config=configs/default.py --workdir=runs/figure1 --mode=spectrogram_figure
"""

from ml_collections import config_dict


def get_config():
  config = config_dict.ConfigDict()
  config.seed = 0

  # ---- data: FSDD recordings -> split, filtered, padded, scaled waveforms (rvq_jax.data) ----
  config.data = config_dict.ConfigDict()
  # Folder of FSDD WAVs; unset: $FSDD_DIR, else the cache (downloading `download_url` once).
  config.data.data_dir = config_dict.placeholder(str)
  # Downloads and prepared arrays; unset: $RVQ_JAX_CACHE, else $XDG_CACHE_HOME/rvq_jax, ~/.cache/rvq_jax.
  config.data.cache_dir = config_dict.placeholder(str)
  config.data.use_cache = True
  config.data.release = "v1.0.10"
  config.data.download_url = (
      "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz")
  config.data.expected_files = 3000        # a download holding another count is rejected
  config.data.sample_rate = 8000           # Hz; files at another rate are skipped with a warning
  # Longer recordings are dropped (17 of 3,000 at 8192, i.e. 99.4% kept); shorter are zero-padded.
  # Must be a multiple of audio.hop_length; 8192 / 64 = 128 spectrogram frames.
  config.data.max_samples = 8192
  config.data.test_last_index = 4          # official split: repetition index 0-4 is test
  config.data.val_first_index = 5          # validation: indices 5-9 of every speaker and digit,
  config.data.val_last_index = 9           # carved from the official train indices 5-49

  # ---- audio: waveform <-> [bins, frames, 2] spectrogram (rvq_jax.audio) ----
  config.audio = config_dict.ConfigDict()
  config.audio.frame_length = 254          # samples per window (31.75 ms); 254 // 2 + 1 = 128 bins
  config.audio.hop_length = 64             # samples between frames (8 ms)
  config.audio.representation = "mag_phase"  # or 'logmag_phase', 'real_imag'
  config.audio.log_eps = 1e-5              # floor inside log |X| for 'logmag_phase'

  # ---- figures ----
  config.figures = config_dict.ConfigDict()
  config.figures.example_recording = "9_jackson_0"  # Figure 1: a test-split "nine"
  return config
