"""model1, the basic model: 5 RVQ levels of 512 codes, EMA decay gamma 0.99, uniform codebook init.

In the original study its commitment loss rose early and outpaced the reconstruction loss.

COMMAND: python -m rvq_jax.main --config=configs/model1.py --workdir=runs/model1
RESULTS (2026-12-02, 2-core CPU, float32, all 100 epochs = 7,400 steps, 2.9 h of training;
docs/RESULTS.md): validation loss 0.0567 (reconstruction 0.0298, commitment 0.1076); test loss
0.0568 (spectrogram MSE 0.0299). The commitment loss rose over the first two epochs
(0.247 -> 0.292) while the reconstruction loss halved, and stayed above it (3.6x at the end), as in
the study. Level 0 leaves 368 of 512 codes dead (perplexity 16.6); levels 1-4 use nearly all
(perplexity 29-33). 45 kbit/s nominal, 23.7 kbit/s entropy. --mode=evaluate (test split):
PESQ-nb 2.79, STOI 0.898, SI-SDR 7.80 dB, LSD 10.95 dB, digit accuracy of reconstructions 0.752
(originals 0.993, runs/classifier); Griffin-Lim from the true magnitude: PESQ-nb 4.34, STOI 0.990.
"""

from rvq_jax.configs import default


def get_config():
  config = default.get_config()
  config.rvq.levels = 5
  config.rvq.decay = 0.99
  config.rvq.init = "uniform"
  return config
