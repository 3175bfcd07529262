"""model2 = model1 with codebooks initialised Glorot-normal (a better initialisation; marginal gain).

COMMAND: python -m rvq_jax.main --config=configs/model2.py --workdir=runs/model2
"""

from configs import model1


def get_config():
  config = model1.get_config()
  config.rvq.init = "glorot_normal"
  return config
