"""model5 = model4 with 8 RVQ levels: the study's best model, its losses fall throughout.

COMMAND: python -m rvq_jax.main --config=configs/model5.py --workdir=runs/model5
"""

from configs import model4


def get_config():
  config = model4.get_config()
  config.rvq.levels = 8
  return config
