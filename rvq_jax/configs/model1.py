"""model1, the basic model: 5 RVQ levels of 512 codes, EMA decay gamma 0.99, uniform codebook init.

In the original study its commitment loss rose early and outpaced the reconstruction loss.

COMMAND: python -m rvq_jax.main --config=configs/model1.py --workdir=runs/model1
         then --mode=evaluate, then --mode=export --output=pretrained/model1
RESULTS (2026-12-03, 2-core CPU, float32, all 100 epochs = 7,400 steps, 1.56 h of training;
shipped as pretrained/model1; docs/RESULTS.md): validation loss 0.0583 (reconstruction 0.0306,
commitment 0.1109); test spectrogram MSE 0.0307. The commitment loss rose over the first two
epochs (0.262 -> 0.313) while the reconstruction loss halved (0.304 -> 0.146), and stayed above it
(3.6x at the end), as in the study. Level 0 leaves 297 of 512 codes dead (perplexity 20); levels
1-4 use nearly all (perplexity 29-33; 448-465 over the positions that cover speech). 45 kbit/s
nominal, 24.0 kbit/s entropy. --mode=evaluate (test split, pretrained/classifier): PESQ-nb 2.78,
STOI 0.901, SI-SDR 7.94 dB, LSD 11.29 dB, digit accuracy of reconstructions 0.809 (originals
0.993); Griffin-Lim from the true magnitude: PESQ-nb 4.34, STOI 0.990.
"""

from rvq_jax.configs import default


def get_config():
  config = default.get_config()
  config.rvq.levels = 5
  config.rvq.decay = 0.99
  config.rvq.init = "uniform"
  return config
