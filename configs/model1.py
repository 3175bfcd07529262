"""model1, the basic model: 5 RVQ levels of 512 codes, EMA decay gamma 0.99, uniform codebook init.

In the original study its commitment loss rose early and outpaced the reconstruction loss.

COMMAND: python -m rvq_jax.main --config=configs/model1.py --workdir=runs/model1
RESULTS: see docs/RESULTS.md (none recorded in this docstring yet).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.rvq.levels = 5
  config.rvq.decay = 0.99
  config.rvq.init = "uniform"
  return config
