"""The second, independently built digit scorer of the prior's samples (issue 29): another front
end (40 log-mel bands, not every STFT bin), another architecture (1-D convolutions over time, not a
2-D CNN), label smoothing 0.1 (so its confidence means something), another seed; the same
training split and augmentation as configs/classifier.py. Every sample claim uses the worse of
the two scorers.

COMMAND: python -m rvq_jax.main --config=configs/classifier_mel.py --workdir=runs/classifier_mel
         python -m rvq_jax.main --workdir=runs/classifier_mel --mode=export --output=pretrained/classifier_mel
RESULTS: not trained yet.
"""

from rvq_jax.configs import classifier


def get_config():
  config = classifier.get_config()
  config.seed = 1
  c = config.classifier
  c.front_end, c.mel_bands = "log_mel", 40
  c.architecture = "temporal"
  c.features = (64, 128, 128)     # 1-D conv widths over time, each followed by a 2x max-pool
  c.embedding_dim = 128
  c.dropout = 0.3
  c.label_smoothing = 0.1
  return config
