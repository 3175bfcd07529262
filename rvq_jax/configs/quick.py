"""quick: model5's structure shrunk to run in a few minutes on a 2-core CPU, producing every output.

Narrow networks (8, 16 channels, 32-dim latent), 3 levels of 64 codes, 2 epochs; for smoke tests
and trying the pipeline, not for results.

COMMAND: python -m rvq_jax.main --config=configs/quick.py --workdir=runs/quick
"""

from rvq_jax.configs import model5


def get_config():
  config = model5.get_config()
  config.model.encoder_features = (8, 16)
  config.model.latent_dim = 32
  config.rvq.levels = 3
  config.rvq.codes = 64
  config.rvq.restart_candidates = 256
  config.train.batch_size = 16
  config.train.num_epochs = 2
  config.train.log_every_steps = 5
  config.train.checkpoint_every_steps = 50
  config.eval.num_audio = 20
  config.eval.num_figures = 2
  return config
