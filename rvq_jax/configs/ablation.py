"""The VQ-VAE ablation (docs/RESULTS.md, "RVQ-VAE ablation"): one row per change, each the study's
model5 (configs/model5.py) trained for the same 1,000 steps with that change.

COMMAND (one row; `<row>` a key of ROWS, e.g. realimag_kr):
  python -m rvq_jax.main --config=configs/ablation.py:<row> --workdir=runs/abl_<row>
  python -m rvq_jax.main --workdir=runs/abl_<row> --mode=evaluate
  python -m rvq_jax.main --workdir=runs/abl_<row> --mode=export --weights=false \
      --output=docs/ablation/abl_<row>
The results page's "change" column is computed from each row's saved config.json against
model5's (`rvq_jax.eval.page.changed_fields`), so it says what the run really changed.
RESULTS: docs/RESULTS.md (the rows, 2026-12-02 .. 12-04, 2-core CPU): real/imaginary parts +
  k-means + restarts + a log-magnitude loss (model7's recipe) scored best: PESQ-nb 4.24, STOI 0.991.
  Issue 32's codec probes (2026-12-06; scored by benchmarks/rate_distortion.py on 120 test clips
  with bitstream format 1, the record since replaced on docs/RESULTS.md by the full test split with
  format 2, where model7 alone is drawn): codec_fold8 (1,000 steps, 21 min) is a poor codec:
  PESQ-nb 1.68 at 1.05 kbit/s, 2.10 at 4.3, 2.36 at 8.7, 2.61 at 26 (24 levels), LSD ~8 dB at
  every rate, 0.7-1.8 below Opus and Speex at equal bits (model7: 0.2-0.5 below). Its quality
  saturates with the levels, so the limit is the continuous bottleneck (a 128-wide vector for a
  32-bin x 16-frame patch, a linear unfold into a small decoder), not the bits. codec_fold32 runs
  at 9.5 examples/s (its 64 levels of 1,024 x 256 codes; fold8 ~40): stopped at step 260, resumable.
  codec_dropout ran to model7's full length (--config.train.num_steps=7400, 2026-12-06): the
  better codec at equal bits (delta rate against Opus +8%, model7's +13%), shipped as
  pretrained/model8 (configs/model8.py has its results).
"""

from rvq_jax.configs import model5

STEPS = 1000   # every row, so rows compare at equal compute


def _lkr(c):   # log magnitude, k-means init, dead-code restarts
  c.audio.representation, c.rvq.init, c.rvq.dead_code_steps = "logmag_phase", "kmeans", 50


def _realimag_kr(c):
  c.audio.representation, c.rvq.init, c.rvq.dead_code_steps = "real_imag", "kmeans", 50


def _model7(c):   # configs/model7.py's recipe
  _realimag_kr(c)
  c.loss.log_magnitude_weight = 0.1


def chain(*changes):
  """One change made of several, applied in order (each `config -> None`)."""
  def apply(c):
    for change in changes:
      change(c)
  return apply


def set_fields(section, **fields):
  """The change that sets `fields` of the config's `section`."""
  return lambda c: c[section].update(fields)


# row -> (what it tests, the change to model5's config)
ROWS = {
    "magphase": ("the study's model5: mag_phase, Glorot init", lambda c: None),
    "logmag": ("log magnitude", set_fields("audio", representation="logmag_phase")),
    "realimag_kr": ("real/imaginary parts, k-means init, dead-code restart", _realimag_kr),
    "realimag_kr_lmloss": ("real/imaginary, k-means, restart + a log-magnitude loss (weight 0.1, "
                           "floor 0.01)", _model7),
    "logmag_kmeans_restart": ("log magnitude, k-means init, dead-code restart (LKR)", _lkr),
    "lkr_dropout": ("LKR + quantizer dropout", chain(_lkr, set_fields("rvq", dropout=True))),
    "lkr_dropout_cosine": ("LKR + dropout + cosine learning-rate decay to 0",
                           chain(_lkr, set_fields("rvq", dropout=True),
                                 set_fields("optim", schedule="cosine", decay_steps=STEPS))),
    "lkr_eps": ("LKR with the log floor at 0.01 instead of 1e-5 (less weight on silence)",
                chain(_lkr, set_fields("audio", log_eps=0.01))),
    "lkr_wide": ("LKR with encoder/decoder widths 64, 128 (not 32, 64)",
                 chain(_lkr, set_fields("model", encoder_features=(64, 128)))),
    "model7_narrow": ("model7's recipe with encoder/decoder widths 16, 32 (not 32, 64)",
                      chain(_model7, set_fields("model", encoder_features=(16, 32)))),
    # Issue 32's codec probes: fewer codes per second (bands of the latent grid folded into one
    # vector, models/autoencoder.py), more levels to spend the bits, quantizer dropout so that
    # every level count is a codec. Judged by benchmarks/rate_distortion.py at real bit rates.
    "codec_fold8": ("model7's recipe, 4 latent bands (fold 8: 128 vectors/s a level), 24 levels, "
                    "quantizer dropout",
                    chain(_model7, set_fields("model", fold_rows=8),
                          set_fields("rvq", levels=24, dropout=True))),
    "codec_fold32": ("model7's recipe, a latent along time alone (fold 32: 31 vectors/s a "
                     "level, 256 wide), 64 levels of 1,024 codes, quantizer dropout",
                     chain(_model7, set_fields("model", fold_rows=32, latent_dim=256),
                           set_fields("rvq", levels=64, codes=1024, dropout=True))),
    # Issue 32: does training every level count (quantizer dropout) lift model7's low-rate
    # decodes? Run at model7's full length (--config.train.num_steps=7400), so it compares with
    # pretrained/model7 itself on benchmarks/rate_distortion.py.
    "codec_dropout": ("model7's recipe with quantizer dropout (1..8 levels at random)",
                      chain(_model7, set_fields("rvq", dropout=True))),
}
WORKDIR_PREFIX = "abl_"   # runs/abl_<row>, docs/ablation/abl_<row>


def base_config():
  """What every row changes: the study's model5."""
  return model5.get_config()


def get_config(row: str = "magphase"):
  if row not in ROWS:
    raise ValueError(f"configs/ablation.py:{row}: no such row; choose one of {sorted(ROWS)}.")
  config = base_config()
  ROWS[row][1](config)
  config.train.num_steps = STEPS
  return config
