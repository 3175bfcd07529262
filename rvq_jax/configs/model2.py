"""model2 = model1 with codebooks initialised Glorot-normal (a better initialisation; marginal gain).

COMMAND: python -m rvq_jax.main --config=configs/model2.py --workdir=runs/model2
RESULTS (2026-12-02, 2-core CPU, one core: 30 of 100 epochs, --config.train.num_steps=2220, 0.97 h;
  shipped as pretrained/model2; scored with pretrained/classifier):
  validation loss 0.0718 (rec 0.0392, commit 0.1305); test PESQ-nb 2.61 (corpus 2.58), STOI 0.877,
  SI-SDR 6.19 dB, LSD 11.6 dB, digit accuracy 0.772 (originals 0.993); level 0 has 380 of 512
  codes dead (perplexity 17), levels 1-4 use nearly all (perplexity 29-35).
"""

from rvq_jax.configs import model1


def get_config():
  config = model1.get_config()
  config.rvq.init = "glorot_normal"
  return config
