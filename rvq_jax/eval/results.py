"""Regenerates docs/RESULTS.md from run workdirs: one command, numbers only from real runs.

COMMAND: python -m rvq_jax.eval.results --root=runs,pretrained,docs/ablation --out=docs/RESULTS.md
`--root` is a comma-separated list of folders; each workdir is read from the first that holds it
(a run under runs/, else its shipped record under pretrained/, which --mode=export writes).
Reads <root>/classifier/classifier_eval.json and, for each <root>/modelN: config.json,
metrics.jsonl, run_info.json and eval.json (complete after --mode=evaluate); copies the figures it
shows into <out folder>/figures/. Runs that are missing are listed as not run.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from absl import app
from absl import flags

from rvq_jax.eval import compare
from rvq_jax.eval import record
from rvq_jax.eval import render
from rvq_jax.train import writer

_MODELS = [f"model{i}" for i in range(1, 7)]   # the study's five, then the project's recipe


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


def _run_section(workdir: pathlib.Path, out_dir: pathlib.Path, name: str) -> list[str]:
  records = writer.read_metrics(workdir)
  config = _load(workdir / "config.json")
  if not records or config is None:
    return [f"### {name}", "", "Not run yet.", ""]
  info = _load(workdir / "run_info.json") or [{}]
  result = record.load(workdir)
  train = [r for r in records if r["split"] == "train"][-1]
  val = [r for r in records if r["split"] == "validation"][-1]
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
    source = workdir / "figures" / fig
    if source.exists():
      target = out_dir / "figures" / f"{name}_{fig}"
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copy(source, target)
      lines.append(f"![{name} {fig[:-4]}](figures/{target.name})")
  recon = sorted((workdir / "figures").glob("reconstruction_*.png"))
  if recon:
    target = out_dir / "figures" / f"{name}_{recon[0].name}"
    shutil.copy(recon[0], target)
    lines.append(f"![{name} reconstruction](figures/{target.name})")
  return lines + [""]


# The VQ-VAE ablation (issue 15, item 4): each row is configs/model5.py trained for the same
# number of steps with these overrides, evaluated (--mode=evaluate) and kept as a record-only
# export in docs/ablation/<row> (--mode=export --weights=false). Rows of missing runs are left out.
_LKR = ("--config.audio.representation=logmag_phase --config.rvq.init=kmeans "
        "--config.rvq.dead_code_steps=50")
ABLATION_RUNS = {
    "abl_magphase": ("", "the study's model5: mag_phase, Glorot init"),
    "abl_logmag": ("--config.audio.representation=logmag_phase", "log magnitude"),
    "abl_realimag_kr": ("--config.audio.representation=real_imag --config.rvq.init=kmeans "
                        "--config.rvq.dead_code_steps=50",
                        "real/imaginary parts, k-means init, dead-code restart"),
    "abl_logmag_kmeans_restart": (_LKR, "log magnitude, k-means init, dead-code restart (LKR)"),
    "abl_lkr_dropout": (_LKR + " --config.rvq.dropout=True", "LKR + quantizer dropout"),
    "abl_lkr_dropout_cosine": (_LKR + " --config.rvq.dropout=True --config.optim.schedule=cosine "
                               "--config.optim.decay_steps=1000",
                               "LKR + dropout + cosine learning-rate decay to 0"),
    "abl_lkr_eps": (_LKR + " --config.audio.log_eps=0.01",
                    "LKR with the log floor at 0.01 instead of 1e-5 (less weight on silence)"),
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
    half, one = rd[len(rd) // 2 - 1], rd[0]
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


# Prior runs (<root>/<path>): what each changes from configs/realnvp.py. The first is the
# reference of the ablation; rows of missing runs are left out.
PRIOR_RUNS = {
    "prior_ablation/base": "configs/realnvp.py: PCA-16 target, standardised, dequantization 0.25, "
                           "class-conditional base, 2 scales, 600 steps",
    "prior_ablation/raw": "target.preprocess=none (no standardisation)",
    "prior_ablation/no_dequant": "target.dequantization=0",
    "prior_ablation/large_dequant": "target.dequantization=1.0",
    "prior_ablation/gaussian_base": "prior.base=gaussian",
    "prior_ablation/mixture_base": "prior.base=mixture (4 per dimension)",
    "prior_ablation/three_scales": "prior.num_scales=3",
    "prior_ablation/full_latent": "target.projection_dim=0: the full 32x32x128 quantized latent "
                                  "(150 steps: 5x slower per step)",
    "prior_long/dequant_0.1": "target.dequantization=0.1, 1,200 steps (stopped by SIGTERM at 550, "
                              "resumed)",
}


def _histogram_range(histogram) -> str:
  return f"{min(histogram):.3f}-{max(histogram):.3f}"


def _sample_cells(row: dict) -> str:
  memo = row["memorization"]
  return (f"{row['inception_score']:.2f} | {row['frechet_distance']:.1f} | "
          f"{_histogram_range(row['class_histogram'])} | "
          f"{row.get('requested_digit_accuracy', float('nan')):.3f} | "
          f"{memo['median_nearest_train_distance']:.2f} "
          f"({memo['fraction_closer_than_1st_percentile_of_real_test']:.3f})")


def _prior_section(root: pathlib.Path, out_dir: pathlib.Path) -> list[str]:
  """The RealNVP prior: references, each ablation run and the sampling settings."""
  lines = ["## RealNVP prior", ""]
  runs = {name: _load(root / name / "prior_eval.json") for name in PRIOR_RUNS}
  runs = {k: v for k, v in runs.items() if v}
  if not runs:
    return lines + ["No prior runs yet: see configs/realnvp.py for the commands.", ""]
  first = next(iter(runs.values()))
  refs = first["references"]
  lines += [
      "Samples are scored with the digit classifier (1,000 per setting): Inception Score (IS, "
      "at most 10), Fréchet distance (FD) of classifier embeddings to the real test set, the "
      "range of the class histogram (ideal 0.100-0.100), the share recognised as the requested "
      "digit (class-conditional base; chance 0.1), and the memorisation check: median distance "
      "from a sample to its nearest training clip in classifier space (in brackets the share of "
      "samples closer than the closest 1% of real test clips, which are certainly not copies).",
      "", "| set | IS | FD | class shares | requested digit | nearest train clip |",
      "|---|---|---|---|---|---|",
      f"| real test recordings | {_sample_cells(refs['real_test'])} |",
      f"| real test latents through the prior's target space and decoder (the ceiling) | "
      f"{_sample_cells(refs['decoded_test_targets'])} |"]
  if "decoded_noisy_test_targets" in refs:
    noise = first["target"]["noise_std"]
    lines.append(f"| the same with the dequantization noise (std {noise:.3f}) the samples carry | "
                 f"{_sample_cells(refs['decoded_noisy_test_targets'])} |")
  lines.append("")
  lines += ["Each run: `python -m rvq_jax.main --config=configs/realnvp.py --workdir=runs/<run> "
            "--config.vqvae_workdir=runs/model5 --config.<change>` (model5 at its step-500 "
            "checkpoint). The target column gives the shape, preprocessing and the dequantization "
            "noise std = fraction x per-dimension spacing of distinct latent vectors.", ""]
  lines += ["| run | change | target (noise std) | steps | test bits/dim | T | snap | IS | FD | "
            "class shares | requested digit | nearest train clip |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for name, result in runs.items():
    t = result["target"]
    target = (f"{'x'.join(map(str, t['shape']))} {t['kind']}, {t['preprocess']} "
              f"({t['noise_std']:.3f} = {t['dequantization']} x {t['spacing']:.3f})")
    for row in result["samples"]:
      lines.append(f"| {name} | {PRIOR_RUNS[name]} | {target} | {result['step']} | "
                   f"{result['bits_per_dim']['test']:.4f} | {row['temperature']} | "
                   f"{'yes' if row['snap'] else 'no'} | {_sample_cells(row)} |")
  lines += ["", "Bits/dim are of the dequantized target (a continuous density), so they compare "
            "only between runs with the same target and noise std.", ""]
  best = max(runs, key=lambda name: max(r["inception_score"] for r in runs[name]["samples"]))
  figure = root / best / "figures" / "figure3_sample_0.png"
  if figure.exists():
    shutil.copy(figure, out_dir / "figures" / "figure3_prior_sample.png")
    lines += [f"Figure 3 (a sampled latent beside its decoded spectrogram; run `{best}`, the "
              "highest Inception Score above):", "", "![figure 3](figures/figure3_prior_sample.png)",
              ""]
  return lines


def write_results(root, out) -> pathlib.Path:
  """root: a folder of workdirs, or a comma-separated list of them (searched in order)."""
  roots = [pathlib.Path(r) for r in str(root).split(",") if r]
  out = pathlib.Path(out)
  (out.parent / "figures").mkdir(parents=True, exist_ok=True)
  lines = ["# Results", "",
           f"Generated by `python -m rvq_jax.eval.results --root={root} --out={out}` from the run "
           "workdirs; every number comes from a real run of the command shown with it.", ""]
  lines += _classifier_section(roots)
  lines += ["## RVQ-VAE: the study's five models and model6", ""]
  present = [m for m in _MODELS if writer.read_metrics(_find(roots, m, "metrics.jsonl"))]
  if {"model1", "model5"} <= set(present):
    compare.draw_pair(roots, ["model1", "model5"], out.parent / "figures" / "figure2_loss_curves.png")
    table = render.summary_table({m: render.read_run(_find(roots, m, "metrics.jsonl"))
                                  for m in _MODELS})
    lines += ["Figure 2 (model1 against model5: train solid, validation dashed):", "",
              "![figure 2](figures/figure2_loss_curves.png)", "", table, ""]
  for name in _MODELS:
    lines += _run_section(_find(roots, name, "metrics.jsonl"), out.parent, name)
  lines += _ablation_section(roots)
  lines += _prior_section(roots[0], out.parent)
  out.write_text("\n".join(lines))
  return out


FLAGS = flags.FLAGS


def main(argv):
  del argv
  print(write_results(FLAGS.root, FLAGS.out))


def _define_flags():
  """Command-line flags, defined only when run as a script (importing stays inert)."""
  flags.DEFINE_string("root", "runs,pretrained,docs/ablation",
                      "Folders of workdirs (modelN, classifier), comma-separated, searched in order.")
  flags.DEFINE_string("out", "docs/RESULTS.md", "Page to write.")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
