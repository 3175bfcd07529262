"""model3 = model2 with a probabilistic decoder: per-pixel Gaussian (mean, log-scale), NLL loss.

Meant as regularisation; in the study it was worse and was dropped (model4 builds on model2).

COMMAND: python -m rvq_jax.main --config=configs/model3.py --workdir=runs/model3
RESULTS (2026-12-02, 2-core CPU, one core: 30 of 100 epochs, --config.train.num_steps=2220;
  shipped as pretrained/model3; scored with pretrained/classifier):
  validation NLL -2.380 (commit 0.0232); test spectrogram MSE of the mean 0.718 (model2: 0.039),
  PESQ-nb 2.23 (corpus 2.09), STOI 0.799, SI-SDR -23.1 dB, LSD 21.4 dB: worse than model2 on every
  signal measure, as the study found; yet digit accuracy 0.997 (originals 0.993). Level 0: 453 of
  512 codes dead.
"""

from rvq_jax.configs import model2


def get_config():
  config = model2.get_config()
  config.model.decoder = "gaussian"
  return config
