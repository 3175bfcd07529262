"""The second, independently built digit scorer of the prior's samples (issue 29): another front
end (40 log-mel bands, not every STFT bin), another architecture (1-D convolutions over time, not a
2-D CNN), label smoothing 0.1 (so its confidence means something), another seed; the same
training split and augmentation as configs/classifier.py. Every sample claim uses the worse of
the two scorers.

COMMAND: python -m rvq_jax.main --config=configs/classifier_mel.py --workdir=runs/classifier_mel
         python -m rvq_jax.main --workdir=runs/classifier_mel --mode=export --output=pretrained/classifier_mel
RESULTS (2026-12-05, 2-core CPU, 30 epochs in 6 min beside other jobs; pretrained/classifier_mel):
  test accuracy 0.997 (validation 0.997); after Griffin-Lim from the true magnitude 0.997, 4-bit
  mu-law 0.983, white noise at 20 dB SNR 0.997. Label smoothing left it underconfident
  (validation ECE 0.092); its fitted temperature 0.310 brings the expected calibration error to
  0.004 on validation, 0.005 on test, at most 0.014 on every reference degradation. Fréchet
  distances (its embeddings) to the real test set: real validation clips 1.0, white noise 56,
  frame-shuffled spectrograms 52; Inception Score of the real test set 9.87.
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
