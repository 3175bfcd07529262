"""Digit classifier for measuring intelligibility: trained on the training split only, on waveforms
augmented in the step (speed/pitch +-12%, shift, gain, white noise at 15-45 dB SNR), so that
degraded but intelligible audio keeps its label.

COMMAND: python -m rvq_jax.main --config=configs/classifier.py --workdir=runs/classifier
         python -m rvq_jax.main --workdir=runs/classifier --mode=export --output=pretrained/classifier
Writes <workdir>/checkpoints (orbax) and <workdir>/classifier_eval.json: test accuracy overall, per
speaker and after the reference degradations, and the sample-metric references (real held-out
data, white noise, shuffled frames). The second command ships it (every evaluation's default judge).
RESULTS (2026-12-02, 2-core CPU, 30 epochs, 40 min on one core; pretrained/classifier):
  test accuracy 0.993 (validation 0.990); after Griffin-Lim (100 iterations) from the true
  magnitude 0.993, 4-bit mu-law 0.960, white noise at 20 dB SNR 0.997.
  Calibrated (2026-12-05, `python -m rvq_jax.main --workdir=pretrained/classifier --mode=evaluate
  --output=pretrained/classifier`): logits / 0.784 (it was underconfident); expected calibration
  error on validation 0.012 -> 0.006, test 0.012 -> 0.009, 4-bit mu-law 0.031 -> 0.034. Inception
  Score of the real test set 9.71 (9.52 before), of white noise 1.21, of frame-shuffled
  spectrograms 2.59: a calibrated judge that is right 99.3% of the time is necessarily near the
  maximum of 10 on real audio, so sample claims also use the label-smoothed second scorer
  (configs/classifier_mel.py), the Fréchet distance and the ceiling.
"""

from ml_collections import config_dict

from rvq_jax.configs import default


def get_config():
  vqvae = default.get_config()   # the data and spectrograms it judges are the VQ-VAE's
  config = config_dict.ConfigDict()
  config.task = "classifier"
  config.seed = 0
  config.data = vqvae.data
  config.audio = vqvae.audio
  config.classifier = config_dict.ConfigDict()
  config.classifier.front_end = "log_magnitude"   # or 'log_mel' (classifier.mel_bands bands)
  config.classifier.mel_bands = 40
  config.classifier.architecture = "conv2d"       # or 'temporal' (1-D convolutions over time)
  config.classifier.features = (16, 32, 64, 128)   # conv widths, each followed by 2x2 max-pool
  config.classifier.embedding_dim = 128           # penultimate layer, used for Fréchet distance
  config.classifier.dropout = 0.3
  config.classifier.log_eps = 1e-3                # floor inside log |X|
  config.classifier.learning_rate = 1e-3         # peak; 1 epoch warm-up, cosine decay to 0
  config.classifier.weight_decay = 1e-4           # AdamW
  config.classifier.label_smoothing = 0.0         # >0: targets (1 - s) one-hot + s / 10
  # Training augmentation of the waveforms (rvq_jax.data.augment), so that degraded but
  # intelligible audio keeps its label; the spectrogram is computed inside the step.
  config.classifier.augment = config_dict.ConfigDict()
  config.classifier.augment.enabled = True
  config.classifier.augment.speed_range = 0.12        # speed and pitch x U(0.88, 1.12)
  config.classifier.augment.max_shift_samples = 1024  # shift U(-1024, 1024) samples (128 ms)
  config.classifier.augment.gain_db = 6.0             # gain U(-6, 6) dB
  config.classifier.augment.noise_probability = 0.5   # this share of examples gets white noise
  config.classifier.augment.snr_db = (15.0, 45.0)     # at an SNR uniform in this range
  config.classifier.eval_batch_size = 128
  config.classifier.noise_examples = 300          # white-noise lower bound for sample metrics

  # ---- its training loop (rvq_jax.train.trainer; a checkpoint at every epoch end) ----
  config.train = config_dict.ConfigDict()
  config.train.batch_size = 64
  config.train.num_epochs = 30
  config.train.num_steps = config_dict.placeholder(int)  # stop early at this step (tests, smoke)
  config.train.log_every_steps = 10
  config.train.progress_bar = True
  config.parallel = vqvae.parallel

  # ---- the reference degradations of classifier_eval.json (as --mode=evaluate's baselines) ----
  config.eval = config_dict.ConfigDict()
  for field in ("griffin_lim_iterations", "mu_law_bits", "noise_snr_db"):
    config.eval[field] = vqvae.eval[field]
  return config
