"""Regenerates docs/RESULTS.md from run workdirs: one command, numbers only from real runs.

COMMAND: python -m rvq_jax.eval.results --root=runs,pretrained,docs/ablation --out=docs/RESULTS.md
`--root` is a comma-separated list of folders; each workdir is read from the first that holds it
(a run under runs/, else its shipped record under pretrained/, which --mode=export writes).
Reads <root>/classifier/classifier_eval.json and, for each <root>/modelN: config.json,
metrics.jsonl, run_info.json and eval.json (complete after --mode=evaluate); copies the figures it
shows into <out folder>/figures/. Runs that are missing are listed as not run.
`--sections=model1,claims` regenerates only those sections of the existing page and keeps the rest
(hand-written paragraphs included); see `page_sections` for the names.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from absl import app
from absl import flags
import numpy as np

from rvq_jax.eval import compare
from rvq_jax.eval import record
from rvq_jax.eval import render
from rvq_jax.train import writer

_MODELS = [f"model{i}" for i in range(1, 8)]   # the study's five, then the project's recipes
_RECIPES = ["model6", "model7"]                 # the project's own, held to the codec targets


def _load(path: pathlib.Path):
  return json.loads(path.read_text()) if path.exists() else None


def wall_seconds(records: list[dict], batch_size: int) -> float:
  """Training time summed over logged epochs (epoch_seconds, or steps * batch / examples/s)."""
  total, previous = 0.0, 0
  for r in (r for r in records if r["split"] == "train"):
    total += r.get("epoch_seconds") or (r["step"] - previous) * batch_size / r["examples_per_second"]
    previous = r["step"]
  return total


_find = compare.find_workdir


def _validation(records: list[dict]) -> list[dict]:
  return [r for r in records if r["split"] == "validation"]


def _classifier_section(roots: list[pathlib.Path]) -> list[str]:
  result = _load(_find(roots, "classifier", "classifier_eval.json") / "classifier_eval.json")
  if result is None:
    return ["## Digit classifier", "", "Not trained yet: `python -m rvq_jax.main "
            "--config=configs/classifier.py --workdir=runs/classifier --mode=train_classifier`.", ""]
  speakers = result["test"]["per_speaker"]
  lines = ["## Digit classifier", "",
           "COMMAND: `python -m rvq_jax.main --config=configs/classifier.py "
           "--workdir=runs/classifier --mode=train_classifier`, then `--mode=export "
           "--output=pretrained/classifier` (the shipped judge of every score below)", "",
           f"Trained on the training split only. Test accuracy **{result['test']['accuracy']:.4f}**"
           f" (validation {result['validation']['accuracy']:.4f}). Per speaker (test): " +
           ", ".join(f"{k} {v:.2f}" for k, v in speakers.items()) + ".", ""]
  if "robustness" in result:   # classifier_eval.json of an augmentation-trained classifier
    lines += ["Trained with waveform augmentation (configs/classifier.py, `classifier.augment`), "
              "so that degraded but intelligible audio keeps its label. Test accuracy:", "",
              "| test recordings | digit accuracy |", "|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {acc:.3f} |"
              for name, acc in result["robustness"].items()] + [""]
  lines += ["Sample-metric references (the scale for prior samples; Fréchet distance of classifier "
           "embeddings against the real test set):", "",
           "| set | Inception Score | Fréchet distance | class histogram (digits 0-9) |",
           "|---|---|---|---|"]
  for name, row in result["sample_metric_references"].items():
    hist = " ".join(f"{h:.2f}" for h in row["class_histogram"])
    lines.append(f"| {name} | {row['inception_score']:.2f} | {row['frechet_distance']:.1f} | {hist} |")
  return lines + [""]


def _kept_figure(source: pathlib.Path, target: pathlib.Path) -> bool:
  """Copies a run's figure to the page's folder; True when the page has it, copied now or kept
  from an earlier rendering (exported records carry no figures, so a page regenerated from
  pretrained/ keeps the ones its runs drew)."""
  if source.exists():
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
  return target.exists()


def _run_section(workdir: pathlib.Path, out_dir: pathlib.Path, name: str) -> list[str]:
  records = writer.read_metrics(workdir)
  config = _load(workdir / "config.json")
  if not records or config is None:
    return [f"### {name}", "", "Not run yet.", ""]
  info = _load(workdir / "run_info.json") or [{}]
  result = record.load(workdir)
  train = [r for r in records if r["split"] == "train"][-1]
  val = _validation(records)[-1]
  hours = wall_seconds(records, config["train"]["batch_size"]) / 3600
  lines = [f"### {name}", "",
           f"COMMAND: `python -m rvq_jax.main --config=configs/{name}.py --workdir=runs/{name}` "
           "(resumable; re-run to continue)", "",
           f"Device: {info[-1].get('device', 'unknown')}"
           f"{' (%s cores)' % info[-1]['cpu_count'] if info[-1].get('cpu_count') else ''}; "
           f"jax {info[-1].get('jax', '?')}. Trained **{val['epoch']} of "
           f"{config['train']['num_epochs']} epochs** ({val['step']} steps, batch "
           f"{config['train']['batch_size']}), {hours:.2f} h wall-clock (summed per epoch, including "
           "any time the machine was shared)."
           + (f" Test rows: the checkpoint at step {result['step']}." if result else ""), "",
           "| split | loss | reconstruction | commitment |", "|---|---|---|---|",
           f"| train (last epoch mean) | {train['loss']:.4f} | {train['reconstruction']:.4f} | "
           f"{train['commitment']:.4f} |",
           f"| validation | {val['loss']:.4f} | {val['reconstruction']:.4f} | {val['commitment']:.4f} |"]
  if result:
    loss = result["test"]["loss"]
    lines.append(f"| test | {loss['total']:.4f} | {result['test']['spectrogram_mse']:.4f} (MSE) | "
                 f"{loss['commitment']:.4f} |")
  if result and "quality" in result:
    lines += ["", render.PERCEPTUAL_NOTE, ""] + render.quality_table(result)
    lines += ["", "Rate-distortion (decoding the first n levels):", ""]
    lines += render.rate_distortion_table(result)
  if result:
    lines += ["", f"Codes: {render.bit_rate_sentence(result)}. Per level (test), of "
              f"{config['rvq']['codes']} codes:", ""] + render.codebook_table(result)
  lines.append("")
  for fig in ("loss_curves.png", "rate_distortion.png", "codebook_usage.png"):
    target = out_dir / "figures" / f"{name}_{fig}"
    if _kept_figure(workdir / "figures" / fig, target):
      lines.append(f"![{name} {fig[:-4]}](figures/{target.name})")
  # The first test clip's figure: from the run, else the page's kept copy.
  first = [f"{name}_{p.name}" for p in sorted((workdir / "figures").glob("reconstruction_*.png"))]
  first = (first or [p.name for p in sorted((out_dir / "figures").glob(
      f"{name}_reconstruction_*.png"))])[:1]
  for target in first:
    if _kept_figure(workdir / "figures" / target[len(name) + 1:], out_dir / "figures" / target):
      lines.append(f"![{name} reconstruction](figures/{target})")
  return lines + [""]


# The codec targets (issue 15, item 4), each read from a fully trained model's eval.json.
TARGET_PESQ, TARGET_STOI, TARGET_LSD_DB = 4.2, 0.98, 2.5
TARGET_USAGE, TARGET_PERPLEXITY = 0.99, 128
TARGET_HALF_RATE_PESQ, TARGET_ONE_LEVEL_ACCURACY = 3.5, 0.95


def half_and_one_level(rate_distortion: list[dict]) -> tuple[dict, dict]:
  """The rate-distortion rows of half the levels and of the first level alone."""
  return rate_distortion[len(rate_distortion) // 2 - 1], rate_distortion[0]


def codec_target_rows(result: dict) -> list[tuple[str, str, bool]]:
  """(target, reached, met) for each codec target, from one eval.json record (after evaluate).

  Perplexity is held to the target over the latent positions that cover speech (codebook.speech):
  the whole grid's is capped near 35 by the zero padding, which takes one code (shown beside it).
  """
  rec, codebook, rd = result["quality"]["reconstruction"], result["codebook"], result[
      "rate_distortion"]
  original = result["quality"]["original_classifier_accuracy"]
  half, one = half_and_one_level(rd)
  speech = codebook.get("speech", {}).get("perplexity")
  perplexity = min(speech) if speech else min(codebook["perplexity"])
  return [
      ("digit accuracy >= 99% of the originals'",
       f"{rec['classifier_accuracy']:.3f} = {rec['classifier_accuracy'] / original:.1%} of "
       f"{original:.3f}", rec["classifier_accuracy"] >= 0.99 * original),
      (f"PESQ-nb >= {TARGET_PESQ}", f"{rec['pesq_nb']:.2f}", rec["pesq_nb"] >= TARGET_PESQ),
      (f"STOI >= {TARGET_STOI}", f"{rec['stoi']:.3f}", rec["stoi"] >= TARGET_STOI),
      (f"LSD <= {TARGET_LSD_DB} dB", f"{rec['log_spectral_distance_db']:.2f} dB",
       rec["log_spectral_distance_db"] <= TARGET_LSD_DB),
      (f"every level uses >= {TARGET_USAGE:.0%} of its codes", f"min {min(codebook['usage']):.1%}",
       min(codebook["usage"]) >= TARGET_USAGE),
      (f"every level's perplexity >= {TARGET_PERPLEXITY} (over speech)",
       f"min {perplexity:.0f} (whole grid {min(codebook['perplexity']):.0f})",
       perplexity >= TARGET_PERPLEXITY),
      (f"PESQ-nb >= {TARGET_HALF_RATE_PESQ} at half the levels",
       f"{half['pesq_nb']:.2f} ({half['levels']} of {len(rd)})",
       half["pesq_nb"] >= TARGET_HALF_RATE_PESQ),
      (f"digit accuracy >= {TARGET_ONE_LEVEL_ACCURACY:.0%} at one level",
       f"{one['classifier_accuracy']:.3f}", one["classifier_accuracy"] >= TARGET_ONE_LEVEL_ACCURACY)]


def codec_targets_section(roots: list[pathlib.Path]) -> list[str]:
  """The project's recipes side by side against the codec targets (test split, full bit rate
  unless the target says otherwise); recipes not trained and evaluated yet are left out."""
  found = {name: record.load(_find(roots, name, "eval.json")) for name in _RECIPES}
  found = {name: r for name, r in found.items() if r and "quality" in r and "rate_distortion" in r}
  if not found:
    return []
  rows = {name: codec_target_rows(r) for name, r in found.items()}
  lines = ["### The project's recipes against the codec targets", "",
           "Test split, scored by the shipped classifier (`results.codec_target_rows`); PESQ-nb and "
           "STOI are per-file means. For scale: Griffin-Lim from the true magnitude, and 4-bit "
           "mu-law, in each model's baseline table above.", "",
           "| target | " + " | ".join(f"{name} (step {r['step']})" for name, r in found.items())
           + " |", "|---|" + "---|" * len(found)]
  for i, (target, _, _) in enumerate(next(iter(rows.values()))):
    lines.append(f"| {target} | " + " | ".join(
        f"{row[i][1]}: {'**met**' if row[i][2] else 'missed'}" for row in rows.values()) + " |")
  return lines + [""]


# The study's claims (issue 15, item 3), each checked on the runs it is about. A validation-loss
# rise counts against "falls throughout" when it exceeds this share of the epoch before (the
# epoch-to-epoch scatter of a converging run is about 1%); a gain is "marginal" below this share.
RISE_TOLERANCE = 0.05
MARGINAL_GAIN = 0.10


def loss_rises(records: list[dict], key: str = "loss") -> list[tuple[int, float, float]]:
  """(epoch, previous value, value) of every validation epoch whose `key` rose over the one before."""
  val = _validation(records)
  return [(b["epoch"], a[key], b[key]) for a, b in zip(val, val[1:]) if b[key] > a[key]]


def _claim_commitment(records: list[dict]) -> tuple[str, str]:
  """The study: model1's commitment loss rises early and then stays above the reconstruction."""
  val = _validation(records)
  early = val[:3]
  peak = max(early, key=lambda r: r["commitment"])
  end = val[-1]
  rises = peak["commitment"] > early[0]["commitment"]
  ratio = end["commitment"] / end["reconstruction"]
  evidence = (f"validation commitment {early[0]['commitment']:.3f} (epoch 1) -> "
              f"{peak['commitment']:.3f} (epoch {peak['epoch']}) while reconstruction went "
              f"{early[0]['reconstruction']:.3f} -> {peak['reconstruction']:.3f}; epoch "
              f"{end['epoch']}: commitment {ratio:.1f}x the reconstruction")
  return evidence, "yes" if rises and ratio > 1 else "no"


def _claim_glorot(uniform: list[dict], glorot: list[dict]) -> tuple[str, str]:
  """The study: Glorot-normal codebooks (model2) are a marginal gain over uniform ones (model1)."""
  by_step = {r["step"]: r for r in _validation(uniform)}
  common = [r for r in _validation(glorot) if r["step"] in by_step]
  if not common:
    return "no validation step in common", "not measured"
  g = common[-1]
  u = by_step[g["step"]]
  gain = (u["loss"] - g["loss"]) / u["loss"]
  verdict = ("no (Glorot is worse)" if gain < 0 else
             "yes" if gain < MARGINAL_GAIN else "no (more than marginal)")
  return (f"validation loss at step {g['step']}: uniform {u['loss']:.4f}, Glorot {g['loss']:.4f} "
          f"({gain:+.1%})"), verdict


_WORSE_IF_LOWER = {"pesq_nb": ("PESQ-nb", 2), "stoi": ("STOI", 3),
                   "classifier_accuracy": ("digit accuracy", 3)}
_WORSE_IF_HIGHER = {"log_spectral_distance_db": ("LSD dB", 2)}


def _claim_gaussian(mse_result: dict, gaussian_result: dict) -> tuple[str, str]:
  """The study: the Gaussian decoder (model3) is worse than the MSE one (model2)."""
  a, b = mse_result["quality"]["reconstruction"], gaussian_result["quality"]["reconstruction"]
  worse, parts = 0, []
  for key, (name, digits) in {**_WORSE_IF_LOWER, **_WORSE_IF_HIGHER}.items():
    is_worse = b[key] < a[key] if key in _WORSE_IF_LOWER else b[key] > a[key]
    worse += is_worse
    parts.append(f"{name} {a[key]:.{digits}f} -> {b[key]:.{digits}f}")
  total = len(_WORSE_IF_LOWER) + len(_WORSE_IF_HIGHER)
  verdict = "yes" if worse == total else "no" if worse == 0 else f"partly ({worse} of {total})"
  return (f"test, MSE decoder (step {mse_result['step']}) -> Gaussian (step "
          f"{gaussian_result['step']}): " + ", ".join(parts)), verdict


def _claim_falls(records: list[dict]) -> tuple[str, str]:
  """The study: model5's losses fall throughout training."""
  val = _validation(records)
  rises = loss_rises(records)
  big = [(e, a, b) for e, a, b in rises if b - a > RISE_TOLERANCE * a]
  largest = max(((b - a) / a for _, a, b in rises), default=0.0)
  evidence = (f"validation loss {val[0]['loss']:.4f} (epoch 1) -> {val[-1]['loss']:.4f} (epoch "
              f"{val[-1]['epoch']}); it rose in {len(rises)} of {len(val) - 1} epochs, the largest "
              f"rise {largest:.1%}, {len(big)} above {RISE_TOLERANCE:.0%}")
  return evidence, "yes" if not big and val[-1]["loss"] < val[0]["loss"] else "no"


def study_claims_section(roots: list[pathlib.Path]) -> list[str]:
  """The study's four claims, each with the numbers that decide it (or the run it still needs)."""
  runs = {m: writer.read_metrics(_find(roots, m, "metrics.jsonl")) for m in
          ("model1", "model2", "model3", "model5")}
  results = {m: record.load(_find(roots, m, "eval.json")) for m in ("model2", "model3")}

  def needs(*names):
    missing = [n for n in names if not runs[n]]
    return (f"needs `runs/{missing[0]}` (`python -m rvq_jax.main --config=configs/{missing[0]}.py "
            f"--workdir=runs/{missing[0]}`)", "not measured") if missing else None

  rows = [("model1's commitment loss rises early and outpaces the reconstruction",
           needs("model1") or _claim_commitment(runs["model1"])),
          ("the same on model2 (model1 with Glorot codebooks)",
           needs("model2") or _claim_commitment(runs["model2"])),
          ("Glorot-normal codebooks are a marginal gain (model2 against model1)",
           needs("model1", "model2") or _claim_glorot(runs["model1"], runs["model2"])),
          ("the Gaussian decoder is worse (model3 against model2)",
           (_claim_gaussian(results["model2"], results["model3"])
            if results["model2"] and results["model3"] and "quality" in results["model2"]
            and "quality" in results["model3"] else needs("model2", "model3")
            or ("needs `--mode=evaluate` on model2 and model3", "not measured"))),
          ("model5's losses fall throughout", needs("model5") or _claim_falls(runs["model5"]))]
  lines = ["### The study's claims, checked", "",
           "Each claim of the original report against the runs above (`results.study_claims_section`"
           f"; a rise of more than {RISE_TOLERANCE:.0%} over the epoch before counts against "
           f"'falls throughout'; a gain below {MARGINAL_GAIN:.0%} is 'marginal').", "",
           "| claim | evidence | holds |", "|---|---|---|"]
  lines += [f"| {claim} | {evidence} | {verdict} |" for claim, (evidence, verdict) in rows]
  return lines + [""]


# The VQ-VAE ablation (issue 15, item 4): each row is configs/model5.py trained for the same
# number of steps with these overrides, evaluated (--mode=evaluate) and kept as a record-only
# export in docs/ablation/<row> (--mode=export --weights=false). Rows of missing runs are left out.
_LKR = ("--config.audio.representation=logmag_phase --config.rvq.init=kmeans "
        "--config.rvq.dead_code_steps=50")
_REALIMAG_KR = ("--config.audio.representation=real_imag --config.rvq.init=kmeans "
                "--config.rvq.dead_code_steps=50")
_MODEL7 = _REALIMAG_KR + " --config.loss.log_magnitude_weight=0.1"   # configs/model7.py's recipe
ABLATION_RUNS = {
    "abl_magphase": ("", "the study's model5: mag_phase, Glorot init"),
    "abl_logmag": ("--config.audio.representation=logmag_phase", "log magnitude"),
    "abl_realimag_kr": (_REALIMAG_KR, "real/imaginary parts, k-means init, dead-code restart"),
    "abl_realimag_kr_lmloss": (_MODEL7, "real/imaginary, k-means, restart + a log-magnitude loss "
                               "(weight 0.1, floor 0.01)"),
    "abl_logmag_kmeans_restart": (_LKR, "log magnitude, k-means init, dead-code restart (LKR)"),
    "abl_lkr_dropout": (_LKR + " --config.rvq.dropout=True", "LKR + quantizer dropout"),
    "abl_lkr_dropout_cosine": (_LKR + " --config.rvq.dropout=True --config.optim.schedule=cosine "
                               "--config.optim.decay_steps=1000",
                               "LKR + dropout + cosine learning-rate decay to 0"),
    "abl_lkr_eps": (_LKR + " --config.audio.log_eps=0.01",
                    "LKR with the log floor at 0.01 instead of 1e-5 (less weight on silence)"),
    "abl_lkr_wide": (_LKR + " --config.model.encoder_features=(64,128)",
                     "LKR with encoder/decoder widths 64, 128 (not 32, 64)"),
    "abl_model7_narrow": (_MODEL7 + " --config.model.encoder_features=(16,32)",
                          "model7's recipe with encoder/decoder widths 16, 32 (not 32, 64)"),
}


def _min_cell(result: dict, key: str) -> str:
  return f"{min(result[key]):.0f}" if key in result else "-"


def _ablation_section(roots: list[pathlib.Path]) -> list[str]:
  """One row per ablation run found: full-rate quality, the rate-distortion targets (PESQ at half
  the levels, digit accuracy at one level) and codebook use, all on the test split."""
  runs = {name: _find(roots, name, "eval.json") for name in ABLATION_RUNS}
  runs = {name: (w, record.load(w), _load(w / "config.json"))
          for name, w in runs.items() if (w / "eval.json").exists()}
  if not runs:
    return []
  steps = sorted({result["step"] for _, result, _ in runs.values()})
  lines = ["## RVQ-VAE ablation: the project's own recipe", "",
           f"Each row: `python -m rvq_jax.main --config=configs/model5.py --workdir=runs/<row> "
           f"--config.train.num_steps=<steps> <overrides>`, then `--mode=evaluate` with the same "
           f"flags; steps: {', '.join(map(str, steps))} (8 levels of 512 codes, batch 32). Test "
           "split, scored by the shipped classifier; PESQ-nb/STOI are per-file means (corpus in "
           "brackets). 'half' decodes the first 4 of 8 levels, '1 level' the first only. Codebook "
           "use is over all test latent positions; in brackets over the positions that cover the "
           "recording, not its zero padding (quality.speech_codebook_metrics).", "",
           "| row | change | steps | PESQ-nb | STOI | LSD (dB) | SI-SDR (dB) | digit acc. | "
           "PESQ-nb, half | digit acc., 1 level | min usage | min perplexity (speech) | h |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  cell = render.perceptual_cell
  for name, (workdir, result, config) in runs.items():
    rec, rd, codebook = result["quality"]["reconstruction"], result["rate_distortion"], result[
        "codebook"]
    half, one = half_and_one_level(rd)
    hours = wall_seconds(writer.read_metrics(workdir), config["train"]["batch_size"]) / 3600
    lines.append(
        f"| {name} | {ABLATION_RUNS[name][1]} | {result['step']} | {cell(rec, 'pesq_nb', 2)} | "
        f"{cell(rec, 'stoi', 3)} | {rec['log_spectral_distance_db']:.2f} | {rec['si_sdr_db']:.2f} "
        f"| {rec['classifier_accuracy']:.3f} | {half['pesq_nb']:.2f} | "
        f"{one['classifier_accuracy']:.3f} | {min(codebook['usage']):.3f} | "
        f"{min(codebook['perplexity']):.0f} ({_min_cell(codebook.get('speech', {}), 'perplexity')}) "
        f"| {hours:.2f} |")
  lines += ["", "Overrides per row: " + "; ".join(
      f"`{name}`: `{flags or '(none)'}`" for name, (flags, _) in ABLATION_RUNS.items()
      if name in runs) + ".", ""]
  return lines


# The prior ablation (issue 16): each row is configs/realnvp.py on pretrained/model6 with
# dequantization 0.1, trained for the same number of steps with these overrides and scored on 500
# samples per setting, kept as a record-only export in docs/ablation/<row>. Rows of missing runs
# are left out.
PRIOR_ABLATION = {
    "prior_base": ("", "the reference: PCA-16 target, uniform dequantization 0.1, "
                   "class-conditional base"),
    "prior_label": ("--config.prior.label_conditioning=True",
                    "the digit as an input to every coupling (and the class base)"),
    "prior_label_gauss": ("--config.prior.label_conditioning=True --config.prior.base=gaussian",
                          "label-conditioned couplings, N(0, I) base"),
    "prior_mixture": ("--config.prior.base=mixture", "unconditional: mixture base"),
    "prior_model5": ("--config.vqvae_workdir=pretrained/model5",
                     "on the study's model5 instead of model6 (its own PCA-16 and grid)"),
    "prior_deq25": ("--config.target.dequantization=0.25", "dequantization 0.25"),
    "prior_gaussnoise": ("--config.target.dequantization_noise=gaussian",
                         "Gaussian dequantization noise (training loss not a bound)"),
    "prior_proj8": ("--config.target.projection_dim=8", "PCA-8 target"),
    "prior_proj32": ("--config.target.projection_dim=32", "PCA-32 target"),
    "prior_levels2": ("--config.target.levels=2", "the first 2 of 8 levels only"),
    "prior_continuous": ("--config.target.kind=continuous", "the pre-quantization latent"),
    "prior_wide": ("--config.prior.hidden=64", "conditioner width 64 (not 32)"),
    "prior_scales3": ("--config.prior.num_scales=3", "3 scales (not 2)"),
}
SHIPPED_PRIOR = "prior"   # <root>/prior: the shipped prior (pretrained/prior)
# <root>/prior_model5_plateau: the same prior on the study's model5, trained to its plateau
# (a record-only export in docs/ablation).
MODEL5_PRIOR = "prior_model5_plateau"


def _fraction(x) -> str:
  return f"{100 * x:.1f}%"


def _histogram_range(histogram) -> str:
  return f"{_fraction(min(histogram))}-{_fraction(max(histogram))}"


def _sample_cells(row: dict) -> str:
  """IS | FD | class shares | requested digit (worst digit) | near-silent / clipped | memorised."""
  per_digit = [a for a in row.get("requested_digit_accuracy_per_digit") or [] if a is not None]
  requested = (f"{row['requested_digit_accuracy']:.3f}" + (f" ({min(per_digit):.2f})"
               if per_digit else "")) if "requested_digit_accuracy" in row else "-"
  defects = (f"{_fraction(row['near_silent_fraction'])} / {_fraction(row['clipped_fraction'])}"
             if "near_silent_fraction" in row else "-")
  memo = row.get("memorization")
  memorised = _fraction(memo["fraction_closer_than_1st_percentile_of_real_test"]) if memo else "-"
  # A set against itself scores 0 up to rounding: no "-0.0".
  fd = f"{max(row['frechet_distance'], 0.0):.1f}" if "frechet_distance" in row else "-"
  return (f"{row['inception_score']:.2f} | {fd} | {_histogram_range(row['class_histogram'])} | "
          f"{requested} | {defects} | {memorised}")


_SAMPLE_HEADER = ("IS | FD | class shares | requested digit (worst digit) | near-silent / clipped "
                  "| memorised")


def shipped_setting(result: dict) -> dict | None:
  """The scored row of prior_eval.json at the setting its WAVs and figures were drawn at (the
  config's `sample.temperature` / `sample.snap`, also `--mode=sample`'s); None in records written
  before it was recorded."""
  sampling = result.get("sampling")
  return next((r for r in result["samples"] if sampling and r["temperature"] ==
               sampling["temperature"] and r["snap"] == sampling["snap"]), None)


def prior_target_rows(result: dict, row: dict) -> list[tuple[str, str, bool]]:
  """(target, reached, met) for each of the issue's targets, for one scored sample setting."""
  refs = result["references"]
  real_is = refs["real_test"]["inception_score"]
  hist = row["class_histogram"]
  per_digit = [a for a in row.get("requested_digit_accuracy_per_digit") or [] if a is not None]
  ceiling = refs["decoded_noisy_test_targets"]["frechet_distance"]
  memo = row["memorization"]["fraction_closer_than_1st_percentile_of_real_test"]
  worst = int(np.argmin([a if a is not None else 2.0
                         for a in row["requested_digit_accuracy_per_digit"]])) if per_digit else None
  return [
      ("Inception Score >= 80% of the real test set's",
       f"{row['inception_score']:.2f} = {row['inception_score'] / real_is:.0%} of {real_is:.2f}",
       row["inception_score"] >= 0.8 * real_is),
      ("every digit 5%-15% of the samples", _histogram_range(hist),
       min(hist) >= 0.05 and max(hist) <= 0.15),
      ("requested digit recognised >= 90%, every digit",
       (f"{row['requested_digit_accuracy']:.3f} overall; worst digit {worst}: {min(per_digit):.3f}"
        if per_digit else "-"), bool(per_digit) and min(per_digit) >= 0.9),
      ("Fréchet distance below the decoded noisy test latents'",
       f"{row['frechet_distance']:.1f} vs {ceiling:.1f}", row["frechet_distance"] < ceiling),
      ("<= 5% near-silent, <= 5% clipped",
       f"{_fraction(row['near_silent_fraction'])} / {_fraction(row['clipped_fraction'])}",
       row["near_silent_fraction"] <= 0.05 and row["clipped_fraction"] <= 0.05),
      ("memorised (closer to a training clip than the closest 1% of test clips) < 1%",
       _fraction(memo), memo < 0.01)]


def _validation_curve(records: list[dict]) -> list[tuple[int, float]]:
  """(step, validation bits/dim) of a prior's metrics.jsonl records, in order."""
  return [(r["step"], r["bits_per_dim"]) for r in _validation(records)]


def _bound_curve(records: list[dict], points: int = 12) -> str:
  val = _validation_curve(records)
  if not val:
    return "-"
  stride = max(1, len(val) // points)
  shown = val[::stride] + ([val[-1]] if (len(val) - 1) % stride else [])
  return ", ".join(f"{step}: {bpd:.3f}" for step, bpd in shown)


# "Trained until the validation bound stops falling" (issue 16), read off the curve: the best
# validation bound of the last PLATEAU_WINDOW_STEPS steps improves on the best before them by
# less than PLATEAU_TOLERANCE bits/dim (the epoch-to-epoch scatter of the bound is about 0.005).
PLATEAU_WINDOW_STEPS = 1000
PLATEAU_TOLERANCE = 0.005


def bound_plateau(records: list[dict], window: int = PLATEAU_WINDOW_STEPS) -> dict | None:
  """How much the best validation bound fell over the last `window` steps of a prior's run.

  records: metrics.jsonl records (`split`, `step`, `bits_per_dim`). Returns {"last_step",
  "best_before", "best_last", "drop"} (bits/dim; drop = best_before - best_last, negative when
  the last window never reached the earlier best) or None when the run is shorter than twice the
  window (too short to tell).
  """
  val = _validation_curve(records)
  if not val or val[-1][0] < 2 * window:
    return None
  last = val[-1][0]
  before = min(b for s, b in val if s <= last - window)
  recent = min(b for s, b in val if s > last - window)
  return {"last_step": last, "best_before": before, "best_last": recent, "drop": before - recent}


def _plateau_sentence(records: list[dict]) -> str:
  plateau = bound_plateau(records)
  if plateau is None:
    return "Too short to say whether the bound has stopped falling."
  verdict = ("it has stopped falling" if plateau["drop"] < PLATEAU_TOLERANCE else
             "**it was still falling**")
  return (f"Over the last {PLATEAU_WINDOW_STEPS} steps the best validation bound went from "
          f"{plateau['best_before']:.4f} to {plateau['best_last']:.4f} "
          f"({plateau['drop']:+.4f} bits/dim): {verdict} (criterion: less than "
          f"{PLATEAU_TOLERANCE} bits/dim per {PLATEAU_WINDOW_STEPS} steps).")


def _per_digit_table(row: dict) -> list[str]:
  """Per requested digit at one scored setting: recognised, near-silent, and what else it was
  heard as (the two most frequent other digits); empty for records without these fields."""
  counts = row.get("requested_heard_counts")
  if not counts:
    return []
  lines = ["", "Per requested digit at this setting (why a digit misses):", "",
           "| requested | recognised | near-silent | heard instead (share of its samples) |",
           "|---|---|---|---|"]
  for digit, (heard, quiet) in enumerate(zip(counts, row["near_silent_fraction_per_digit"])):
    total = sum(heard)
    if not total:
      continue
    others = sorted((n, d) for d, n in enumerate(heard) if d != digit and n)[::-1][:2]
    instead = ", ".join(f"{d} ({_fraction(n / total)})" for n, d in others) or "-"
    lines.append(f"| {digit} | {_fraction(heard[digit] / total)} | {_fraction(quiet)} | "
                 f"{instead} |")
  return lines


def _prior_run_section(folder: pathlib.Path, out_dir: pathlib.Path, heading: str,
                       export: str, shipped: bool) -> list[str]:
  """One fully trained prior: command, target, bound curve, targets, every scored setting; the
  shipped one also with its figures and WAVs (copied into out_dir as prior_*)."""
  result, config = _load(folder / "prior_eval.json"), _load(folder / "config.json")
  if not result or not config:
    return ([f"{heading}", "", "No shipped prior yet: see configs/realnvp.py for the commands.", ""]
            if shipped else [])
  t, row = result["target"], shipped_setting(result)
  if row is None:
    return [f"`{folder}/prior_eval.json` does not say which setting it sampled at; re-run "
            "`--mode=evaluate` on it.", ""]
  records = writer.read_metrics(folder)
  lines = [heading, "",
           f"COMMAND: `python -m rvq_jax.main --config=configs/realnvp.py "
           f"--workdir=runs/{folder.name} --config.vqvae_workdir={config['vqvae_workdir']} "
           f"--config.target.dequantization={t['dequantization']} "
           f"--config.train.num_steps={config['train']['num_steps']} "
           f"--config.train.num_epochs={config['train']['num_epochs']}"
           + (" --config.prior.label_conditioning=True"
              if config["prior"].get("label_conditioning") else "") + "`, then `--mode=export "
           f"--output={export}"
           + ("`. Sample sevens from it: `python -m rvq_jax.main "
              f"--config=configs/realnvp.py --workdir={export} --mode=sample "
              "--config.sample.digit=7`." if shipped else " --weights=false` (the record only)."),
           "",
           f"Target: the {'x'.join(map(str, t['shape']))} {t['kind']} latents of "
           f"`{config['vqvae_workdir']}` ({t['projection_dim']} principal directions, "
           f"{t['variance_kept']:.1%} of the variance), snapped to a grid of cell "
           f"{t['cell_width']:.3f} ({t['distinct_cells']:.1%} of the distinct latent vectors keep "
           f"a cell of their own), {t['dequantization_noise']} dequantization. Base: "
           f"{config['prior']['base']}"
           + (", the digit also an input to every coupling" if config["prior"].get(
               "label_conditioning") else "") + f"; {result['step']} steps.", "",
           "Validation bound (bits per dimension of the discrete latents, an upper bound on their "
           "entropy; step: value): " + _bound_curve(records) + f". Test: "
           f"{result['bits_per_dim']['test']:.4f}. " + _plateau_sentence(records), "",
           f"Targets at its sampling setting (T={row['temperature']}, "
           f"{'snapped' if row['snap'] else 'not snapped'}; {row['examples']} samples, "
           "scored by the shipped classifier):", "",
           "| target | reached | met |", "|---|---|---|"]
  lines += [f"| {name} | {value} | {'yes' if met else '**no**'} |"
            for name, value, met in prior_target_rows(result, row)]
  lines += _per_digit_table(row)
  lines += ["", "Every scored setting, beside the references (real test recordings; the real "
            "test latents through the target space and decoder, clean and with the dequantization "
            "noise the samples carry):", "", f"| set | {_SAMPLE_HEADER} |",
            "|---|---|---|---|---|---|---|"]
  for name, ref in result["references"].items():
    lines.append(f"| {name.replace('_', ' ')} | {_sample_cells(ref)} |")
  for r in result["samples"]:
    lines.append(f"| samples T={r['temperature']}{', snapped' if r['snap'] else ''} | "
                 f"{_sample_cells(r)} |")
  lines.append("")
  if not shipped:
    return lines
  for name, caption in (("figure3_sample_0.png", "Figure 3: a sampled latent (first channel) "
                         "beside its decoded spectrogram"),
                        ("class_grid.png", "Class-conditional samples, one row per requested "
                         "digit; above each, the digit the classifier hears")):
    target = out_dir / "figures" / f"prior_{name}"
    if _kept_figure(folder / "figures" / name, target):
      lines += [f"{caption}:", "", f"![{name[:-4]}](figures/{target.name})", ""]
  wavs = sorted((out_dir / "audio").glob("prior_digit*.wav"))
  if wavs:
    lines += [f"Listening: {len(wavs)} samples in `docs/audio/prior_digit<d>_<a|b>.wav`, the "
              "grid's first two of each digit (the WAVs `<d>_sample_<d>` and `<d>_sample_1<d>` "
              "that the evaluation writes at its sampling setting).", ""]
  return lines


def _prior_ablation_section(roots: list[pathlib.Path]) -> list[str]:
  runs = {name: _find(roots, name, "prior_eval.json") for name in PRIOR_ABLATION}
  runs = {name: _load(w / "prior_eval.json") for name, w in runs.items()
          if (w / "prior_eval.json").exists()}
  if not runs:
    return []
  steps = sorted({r["step"] for r in runs.values()})
  lines = ["### Prior ablation", "",
           "Each row: `python -m rvq_jax.main --config=configs/realnvp.py --workdir=runs/<row> "
           "--config.vqvae_workdir=pretrained/model6 --config.target.dequantization=0.1 "
           f"--config.train.num_steps=<steps> --config.sample.num_samples=500 <overrides>`; steps: "
           f"{', '.join(map(str, steps))}. Bound: test bits per dimension of the grid-snapped "
           "latents (comparable between rows with the same target only). Samples at T=1.0 and "
           "T=0.7, not snapped (the first rows also snapped to the RVQ code path).", "",
           f"| row | change | bound | T | snap | {_SAMPLE_HEADER} |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for name, result in runs.items():
    for i, row in enumerate(result["samples"]):   # the run's name, change and bound once
      first = (f"{name} | {PRIOR_ABLATION[name][1]} | {result['bits_per_dim']['test']:.3f}"
               if i == 0 else " | | ")
      lines.append(f"| {first} | {row['temperature']} | {'yes' if row['snap'] else 'no'} | "
                   f"{_sample_cells(row)} |")
  lines += ["", "Overrides per row: " + "; ".join(
      f"`{name}`: `{flags or '(none)'}`" for name, (flags, _) in PRIOR_ABLATION.items()
      if name in runs) + ".", ""]
  return lines


def _prior_section(roots: list[pathlib.Path], out_dir: pathlib.Path) -> list[str]:
  """The RealNVP prior: the shipped prior against the targets, the same on model5, the ablation."""
  lines = ["## RealNVP prior", "",
           "Samples are scored with the shipped digit classifier: Inception Score (IS, at most 10), "
           "Fréchet distance (FD) of classifier embeddings to the real test set, the range of the "
           "class shares (ideal 10% each), the share recognised as the requested digit overall "
           "(and for the worst digit), near-silent (RMS below -55 dBFS) and clipped samples, and "
           "the memorised share: samples closer (classifier space) to a training clip than the "
           "closest 1% of real test clips, which are certainly not copies.", ""]
  lines += _prior_run_section(_find(roots, SHIPPED_PRIOR, "prior_eval.json"), out_dir,
                              f"### The shipped prior (`pretrained/{SHIPPED_PRIOR}`)",
                              f"pretrained/{SHIPPED_PRIOR}", shipped=True)
  lines += _prior_run_section(_find(roots, MODEL5_PRIOR, "prior_eval.json"), out_dir,
                              "### The same prior on the study's model5",
                              f"docs/ablation/{MODEL5_PRIOR}", shipped=False)
  return lines + _prior_ablation_section(roots)


def _models_intro(roots: list[pathlib.Path], out_dir: pathlib.Path) -> list[str]:
  """The heading of the model sections: Figure 2 (model1 against model5) and the summary table."""
  lines = ["## RVQ-VAE: the study's five models and the project's recipes (model6, model7)", ""]
  present = [m for m in _MODELS if writer.read_metrics(_find(roots, m, "metrics.jsonl"))]
  if {"model1", "model5"} <= set(present):
    compare.draw_pair(roots, ["model1", "model5"], out_dir / "figures" / "figure2_loss_curves.png")
    table = render.summary_table({m: render.read_run(_find(roots, m, "metrics.jsonl"))
                                  for m in _MODELS})
    lines += ["Figure 2 (model1 against model5: train solid, validation dashed):", "",
              "![figure 2](figures/figure2_loss_curves.png)", "", table, ""]
  return lines


def _listening_section(out_dir: pathlib.Path) -> list[str]:
  """The listening examples that `python -m rvq_jax.listening` wrote beside the page:
  audio/<clip>_original.wav, audio/<clip>_<model>.wav and figures/listening_<clip>.png."""
  audio = out_dir / "audio"
  clips = sorted(p.name[:-len("_original.wav")] for p in audio.glob("*_original.wav"))
  if not clips:
    return []
  models = sorted({p.stem[len(clips[0]) + 1:] for p in audio.glob(f"{clips[0]}_*.wav")}
                  - {"original"})
  lines = ["### Listening examples", "",
           f"`python -m rvq_jax.listening --models={','.join(f'pretrained/{m}' for m in models)} "
           f"--clips={','.join(clips)} --out=docs`: each test clip as `docs/audio/<clip>_original"
           ".wav` and its reconstruction by " + " and ".join(f"`<clip>_{m}.wav`" for m in models) +
           " (each model at its full bit rate), with their spectrograms (scipy STFT, one colour "
           "scale per clip):", ""]
  lines += [f"![listening {clip}](figures/listening_{clip}.png)" for clip in clips
            if (out_dir / "figures" / f"listening_{clip}.png").exists()]
  return lines + [""]


def page_sections(roots: list[pathlib.Path], out_dir: pathlib.Path) -> dict:
  """The page in order, as {section name: () -> its lines}; rendering one writes only its figures.

  Names: classifier, models (Figure 2 and the summary table), model1 .. model7, targets, listening,
  claims, ablation, prior (with its subsections). Each renderer's first line is the section's heading.
  """
  sections = {"classifier": lambda: _classifier_section(roots),
              "models": lambda: _models_intro(roots, out_dir)}
  for name in _MODELS:
    sections[name] = (lambda name=name: _run_section(_find(roots, name, "metrics.jsonl"), out_dir,
                                                     name))
  sections["targets"] = lambda: codec_targets_section(roots)
  sections["listening"] = lambda: _listening_section(out_dir)
  sections["claims"] = lambda: study_claims_section(roots)
  sections["ablation"] = lambda: _ablation_section(roots)
  sections["prior"] = lambda: _prior_section(roots, out_dir)
  return sections


def _heading(line: str) -> tuple[int, str] | None:
  """(level, key) of a markdown heading line; the key is its text before any ':' (so a renamed
  subtitle still matches), None for other lines."""
  if not line.startswith("#"):
    return None
  level = len(line) - len(line.lstrip("#"))
  return level, line[level:].split(":")[0].strip()


def splice(page: str, section: list[str], path="the page") -> str:
  """`page` with the section that starts with `section[0]`'s heading replaced by `section`.

  The replaced part runs to the next heading of the same or a higher level when `section` has
  subsections of its own, else to the next heading of any level (so the models introduction stops
  at "### model1"); everything else on the page, hand-written text included, is kept.
  """
  lines = page.split("\n")
  level, key = _heading(section[0])
  starts = [i for i, line in enumerate(lines) if _heading(line) == (level, key)]
  if len(starts) != 1:
    raise ValueError(f"{path}: {len(starts)} sections headed {section[0]!r} (need exactly one); "
                     "regenerate the whole page instead (no --sections)")
  nested = any(_heading(line) for line in section[1:])
  end = next((i for i in range(starts[0] + 1, len(lines)) if _heading(lines[i]) and
              (not nested or _heading(lines[i])[0] <= level)), len(lines))
  tail = lines[end:]
  return "\n".join(lines[:starts[0]] + section + ([""] if tail and section[-1] else []) + tail)


def write_results(root, out, sections=None) -> pathlib.Path:
  """root: a folder of workdirs, or a comma-separated list of them (searched in order).

  sections: None writes the whole page; else names from `page_sections` regenerated into the
  existing page at `out` (the rest of it, hand-written text included, is kept).
  """
  roots = [pathlib.Path(r) for r in str(root).split(",") if r]
  out = pathlib.Path(out)
  (out.parent / "figures").mkdir(parents=True, exist_ok=True)
  renderers = page_sections(roots, out.parent)
  if sections:
    unknown = [name for name in sections if name not in renderers]
    if unknown:
      raise ValueError(f"--sections: unknown {', '.join(unknown)}; choose from "
                       f"{', '.join(renderers)}")
    if not out.exists():
      raise FileNotFoundError(f"{out}: no page to regenerate sections of; drop --sections to "
                              "write the whole page")
    page = out.read_text()
    for name in sections:
      page = splice(page, renderers[name](), out)
    out.write_text(page)
    return out
  lines = ["# Results", "",
           f"Generated by `python -m rvq_jax.eval.results --root={root} --out={out}` from the run "
           "workdirs; every number comes from a real run of the command shown with it.", ""]
  for render_section in renderers.values():
    lines += render_section()
  out.write_text("\n".join(lines))
  return out


FLAGS = flags.FLAGS


def main(argv):
  del argv
  print(write_results(FLAGS.root, FLAGS.out, FLAGS.sections))


def _define_flags():
  """Command-line flags, defined only when run as a script (importing stays inert)."""
  flags.DEFINE_string("root", "runs,pretrained,docs/ablation",
                      "Folders of workdirs (modelN, classifier), comma-separated, searched in order.")
  flags.DEFINE_string("out", "docs/RESULTS.md", "Page to write.")
  flags.DEFINE_list("sections", None, "Regenerate only these sections of the existing page "
                    "(classifier, models, model1..model7, targets, listening, claims, ablation, "
                    "prior), keeping the rest of it; default: the whole page.")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
