"""model4 = model2 with a higher EMA decay, gamma 0.998: slower, steadier codebook updates.

COMMAND: python -m rvq_jax.main --config=configs/model4.py --workdir=runs/model4
"""

from rvq_jax.configs import model2


def get_config():
  config = model2.get_config()
  config.rvq.decay = 0.998
  return config
