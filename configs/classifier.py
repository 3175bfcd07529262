"""Digit classifier for measuring quality: trained on the training split only.

COMMAND: python -m rvq_jax.main --config=configs/classifier.py --workdir=runs/classifier --mode=train_classifier
Writes <workdir>/checkpoints (orbax) and <workdir>/classifier_eval.json: test accuracy overall and
per speaker, and the sample-metric references (real held-out data, white noise, shuffled frames).
"""

from ml_collections import config_dict

from configs import default


def get_config():
  config = default.get_config()
  config.classifier = config_dict.ConfigDict()
  config.classifier.features = (16, 32, 64, 128)   # conv widths, each followed by 2x2 max-pool
  config.classifier.embedding_dim = 128           # penultimate layer, used for Fréchet distance
  config.classifier.dropout = 0.3
  config.classifier.log_eps = 1e-3                # floor inside log |X|
  config.classifier.learning_rate = 1e-3         # peak; 1 epoch warm-up, cosine decay to 0
  config.classifier.weight_decay = 1e-4           # AdamW
  config.classifier.num_epochs = 30
  config.classifier.batch_size = 64
  config.classifier.time_shift_frames = 16        # augmentation: random circular shift in time
  config.classifier.eval_batch_size = 128
  config.classifier.noise_examples = 300          # white-noise lower bound for sample metrics
  return config
