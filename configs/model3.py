"""model3 = model2 with a probabilistic decoder: per-pixel Gaussian (mean, log-scale), NLL loss.

Meant as regularisation; in the study it was worse and was dropped (model4 builds on model2).

COMMAND: python -m rvq_jax.main --config=configs/model3.py --workdir=runs/model3
"""

from configs import model2


def get_config():
  config = model2.get_config()
  config.model.decoder = "gaussian"
  return config
