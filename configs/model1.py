"""model1, the basic model: 5 RVQ levels of 512 codes, EMA decay gamma 0.99, uniform codebook init.

In the original study its commitment loss rose early and outpaced the reconstruction loss.

COMMAND: python -m rvq_jax.main --config=configs/model1.py --workdir=runs/model1
RESULTS (2026-11-24, 2-core CPU, 6 of 100 epochs, checkpoint step 500; docs/RESULTS.md):
  validation loss 0.1146 (reconstruction 0.0691, commitment 0.1819); the commitment loss rose over
  the first epochs (0.15 -> 0.29) before falling, as in the study. Test: SI-SDR 3.18 dB, digit
  accuracy of reconstructions 0.601 (originals 0.980); level-0 codebook uses 97 of 512 codes.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.rvq.levels = 5
  config.rvq.decay = 0.99
  config.rvq.init = "uniform"
  return config
