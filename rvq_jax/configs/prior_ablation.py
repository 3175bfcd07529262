"""The prior ablation (docs/RESULTS.md, "Prior ablation"): one row per change, each the RealNVP
prior of configs/realnvp.py on pretrained/model6 (dequantization 0.1) trained for the same number
of steps with that change and scored on 500 samples per setting.

COMMAND (one row; `<row>` a key of ROWS, e.g. noiseaug30):
  python -m rvq_jax.main --config=configs/prior_ablation.py:<row> --workdir=runs/prior_<row>
  python -m rvq_jax.main --workdir=runs/prior_<row> --mode=export --weights=false \
      --output=docs/ablation/prior_<row>
The results page's "change" column is computed from each row's saved config.json against
`base_config()` (`rvq_jax.eval.page.changed_fields`).
RESULTS: docs/RESULTS.md ("Prior ablation"). The first row that moves the samples' scores is
cfg_3k (2026-12-06, 3,000 steps, 1,000 samples per setting): at guidance 1, T=0.5, IS 101% / 92%
of the ceiling's (judge / second scorer), requested digit 0.982 / 0.935 (worst digit 0.88 /
0.58), size-matched FD 13x / 6.6x the ceiling's, against base3k's 83% / 79%, 0.855 / 0.809 and
15x / 7.9x at the same length; guidance 3 over-sharpens (the judge's FD 64x the ceiling's).
cfg_full (2026-12-06, 12,000 steps, 2 h on the CPU; bound: validation 2.036, test 2.019): at
guidance 1, T=0.7, IS 99% / 90% of the ceiling's, requested digit 0.965 / 0.895 (worst digit 0.84 /
0.50), size-matched FD 13.8x / 7.0x; against the shipped prior's best-scored setting (T=0.5, no
guidance: 84% / 81%, 0.857 / 0.820 (0.32 / 0.45), 14.2x / 8.4x) better on every sample score but
near-silence: 10.8% against 5.8% (the ceiling itself: 4.4%). Shipped as pretrained/prior
(configs/realnvp.py's defaults are now this recipe).
cfg_1x1_3k (2026-12-06, 3,000 steps): Glow's invertible 1x1 mixing on top of cfg_3k moves nothing
at guidance 1, T=0.7: IS 96% / 88% of the ceiling's (cfg_3k 97% / 87%), FD 9.8x / 6.9x (10.7x /
7.0x), requested digit 0.926 / 0.863 (0.936 / 0.857), near-silent 8.3% (6.8%); its bound is
slightly worse (test 2.079 against 2.066).
"""

from rvq_jax.configs import realnvp
from rvq_jax.configs.ablation import chain
from rvq_jax.configs.ablation import set_fields

STEPS = 1000   # the first rows (2026-12-03); rows that set their own length say so below


def _steps(n):
  return set_fields("train", num_steps=n)


def _cfg():
  """Classifier-free guidance as the cfg rows train it, sampled at guidance 0, 1 and 2."""
  return chain(set_fields("prior", label_conditioning=True, label_dropout=0.1),
               set_fields("sample", guidance=1.0, guidances=(0.0, 1.0, 2.0)))


# row -> (what it tests, the change to the base config)
ROWS = {
    "base": ("the reference: PCA-16 target, uniform dequantization 0.1, class-conditional base",
             lambda c: None),
    "label": ("the digit as an input to every coupling (and the class base)",
              set_fields("prior", label_conditioning=True)),
    "label_gauss": ("label-conditioned couplings, N(0, I) base",
                    set_fields("prior", label_conditioning=True, base="gaussian")),
    "mixture": ("unconditional: mixture base", set_fields("prior", base="mixture")),
    "model5": ("on the study's model5 instead of model6 (its own PCA-16 and grid)",
               lambda c: setattr(c, "vqvae_workdir", "pretrained/model5")),
    "deq25": ("dequantization 0.25", set_fields("target", dequantization=0.25)),
    "gaussnoise": ("Gaussian dequantization noise (training loss not a bound)",
                   set_fields("target", dequantization_noise="gaussian")),
    "proj8": ("PCA-8 target", set_fields("target", projection_dim=8)),
    "proj32": ("PCA-32 target", set_fields("target", projection_dim=32)),
    "levels2": ("the first 2 of 8 levels only", set_fields("target", levels=2)),
    "continuous": ("the pre-quantization latent", set_fields("target", kind="continuous")),
    "wide": ("conditioner width 64 (not 32)", set_fields("prior", hidden=64)),
    "scales3": ("3 scales (not 2)", set_fields("prior", num_scales=3)),
    # Issue 29: at 3,000 steps, beside the base at the same length.
    "base3k": ("the reference at 3,000 steps", _steps(3000)),
    "noiseaug30": ("noise augmentation 0.3 std in training, one Tweedie denoising step at "
                   "sampling (TarFlow), 3,000 steps",
                   chain(_steps(3000), set_fields("target", noise_augmentation=0.3))),
    "noiseaug10": ("noise augmentation 0.1 std + denoising, 3,000 steps",
                   chain(_steps(3000), set_fields("target", noise_augmentation=0.1))),
    "wide64x2_3k": ("capacity: conditioner width 64 with 2 residual blocks (not 32 with 1), 3,000 "
                    "steps", chain(_steps(3000), set_fields("prior", hidden=64, res_blocks=2))),
    "cfg_3k": ("classifier-free guidance: the digit in every coupling, dropped from 10% of the "
               "training labels; sampled at guidance 0, 1 and 3; 3,000 steps",
               chain(_steps(3000), set_fields("prior", label_conditioning=True, label_dropout=0.1),
                     set_fields("sample", guidances=(0.0, 1.0, 3.0)))),
    # Issue 29, on top of guidance (the first change that moved the samples), 3,000 steps each.
    "cfg_1x1_3k": ("guidance + Glow's invertible 1x1 channel mixing before every coupling",
                   chain(_steps(3000), _cfg(), set_fields("prior", invertible_1x1=True))),
    "cfg_model7_3k": ("guidance, on model7's latents (its own PCA-16 and grid) instead of model6's",
                      chain(_steps(3000), _cfg(),
                            lambda c: setattr(c, "vqvae_workdir", "pretrained/model7"))),
    # The candidate to ship: cfg_3k's recipe trained as long as the shipped prior (12,000 steps),
    # 1,000 samples per setting.
    "cfg_full": ("guidance, trained as long as the shipped prior (12,000 steps)",
                 chain(_steps(12000), _cfg(),
                       set_fields("train", num_epochs=200, checkpoint_every_steps=250),
                       set_fields("sample", num_samples=1000, temperatures=(1.0, 0.7, 0.5)))),
}
WORKDIR_PREFIX = "prior_"   # runs/prior_<row>, docs/ablation/prior_<row>


def base_config():
  """What every row changes: configs/realnvp.py on model6, 500 samples per scored setting, as the
  rows were first run (2026-12-03): the digit in the base only, no guidance, shown at T=0.5. (The
  shipped recipe, configs/realnvp.py, is now the row cfg_full.)"""
  config = realnvp.get_config()
  config.vqvae_workdir = "pretrained/model6"
  config.target.dequantization = 0.1
  config.train.num_steps = STEPS
  config.prior.label_conditioning = False
  config.prior.label_dropout = 0.0
  config.sample.num_samples = 500
  config.sample.temperature = 0.5
  config.sample.guidance = 0.0
  config.sample.guidances = (0.0,)
  config.sample.snap_settings = (False,)
  return config


def get_config(row: str = "base"):
  if row not in ROWS:
    raise ValueError(f"configs/prior_ablation.py:{row}: no such row; choose one of "
                     f"{sorted(ROWS)}.")
  config = base_config()
  ROWS[row][1](config)
  return config
