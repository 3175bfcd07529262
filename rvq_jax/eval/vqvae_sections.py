"""The results page's VQ-VAE parts: the digit classifier, one section per model, Figure 2 and the
summary table, the codec targets, the listening examples and the ablation table. Each renderer
returns the markdown lines of its section (its first line the heading); `results` assembles them."""

from __future__ import annotations

import pathlib

from rvq_jax.configs import ablation
from rvq_jax.eval import compare
from rvq_jax.eval import page
from rvq_jax.eval import record
from rvq_jax.eval import render
from rvq_jax.eval.thresholds import TARGET_HALF_RATE_PESQ
from rvq_jax.eval.thresholds import TARGET_LSD_DB
from rvq_jax.eval.thresholds import TARGET_ONE_LEVEL_ACCURACY
from rvq_jax.eval.thresholds import TARGET_PERPLEXITY
from rvq_jax.eval.thresholds import TARGET_PESQ
from rvq_jax.eval.thresholds import TARGET_STOI
from rvq_jax.eval.thresholds import TARGET_USAGE
from rvq_jax.train import writer

MODELS = [f"model{i}" for i in range(1, 8)]   # the study's five, then the project's recipes
RECIPES = ["model6", "model7"]                 # the project's own, held to the codec targets


# The scorers: (workdir name, config, heading, role).
SCORERS = {"classifier": ("classifier", "## Digit classifier", "the shipped judge of every score "
                          "below"),
           "classifier_mel": ("classifier_mel", "### The second scorer of the prior's samples",
                              "log-mel front end, temporal CNN, label smoothing, its own seed: "
                              "built apart from the judge, it scores the prior's samples beside it")}


def classifier_section(roots: list[pathlib.Path], name: str = "classifier") -> list[str]:
  config_name, heading, role = SCORERS[name]
  result = page.load_json(page.find(roots, name, "classifier_eval.json") / "classifier_eval.json")
  if result is None:
    return [heading, "", "Not trained yet: `python -m rvq_jax.main "
            f"--config=configs/{config_name}.py --workdir=runs/{name}`.", ""]
  speakers = result["test"]["per_speaker"]
  lines = [heading, "",
           f"COMMAND: `python -m rvq_jax.main --config=configs/{config_name}.py "
           f"--workdir=runs/{name}`, then `--mode=export "
           f"--output=pretrained/{name}` ({role})", "",
           f"Trained on the training split only. Test accuracy **{result['test']['accuracy']:.4f}**"
           f" (validation {result['validation']['accuracy']:.4f}). Per speaker (test): " +
           ", ".join(f"{k} {v:.2f}" for k, v in speakers.items()) + ".", ""]
  if "calibration" in result:   # classifier_eval.json written since calibration (issue 29)
    c = result["calibration"]
    lines += [f"Calibrated by temperature scaling on the validation split: logits / "
              f"{c['temperature']:.3f} (every probability, Inception Score included, uses it). "
              "Expected calibration error (15 bins) before and after:", "",
              "| set | ECE before | ECE after |", "|---|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {e['before']:.4f} | {e['after']:.4f} |"
              for name, e in c["expected_calibration_error"].items()] + [""]
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


def run_section(workdir: pathlib.Path, out_dir: pathlib.Path, name: str) -> list[str]:
  records = writer.read_metrics(workdir)
  config = page.load_json(workdir / "config.json")
  if not records or config is None:
    return [f"### {name}", "", "Not run yet.", ""]
  info = page.load_json(workdir / "run_info.json") or [{}]
  result = record.load(workdir)
  train = [r for r in records if r["split"] == "train"][-1]
  val = page.validation_records(records)[-1]
  hours = page.wall_seconds(records, config["train"]["batch_size"]) / 3600
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
    if page.kept_figure(workdir / "figures" / fig, target):
      lines.append(f"![{name} {fig[:-4]}](figures/{target.name})")
  # The first test clip's figure: from the run, else the page's kept copy.
  first = [f"{name}_{p.name}" for p in sorted((workdir / "figures").glob("reconstruction_*.png"))]
  first = (first or [p.name for p in sorted((out_dir / "figures").glob(
      f"{name}_reconstruction_*.png"))])[:1]
  for target in first:
    if page.kept_figure(workdir / "figures" / target[len(name) + 1:], out_dir / "figures" / target):
      lines.append(f"![{name} reconstruction](figures/{target})")
  return lines + [""]


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
  found = {name: record.load(page.find(roots, name, "eval.json")) for name in RECIPES}
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


def models_intro(roots: list[pathlib.Path], out_dir: pathlib.Path) -> list[str]:
  """The heading of the model sections: Figure 2 (model1 against model5) and the summary table."""
  lines = ["## RVQ-VAE: the study's five models and the project's recipes (model6, model7)", ""]
  present = [m for m in MODELS if writer.read_metrics(page.find(roots, m, "metrics.jsonl"))]
  if {"model1", "model5"} <= set(present):
    compare.draw_pair(roots, ["model1", "model5"], out_dir / "figures" / "figure2_loss_curves.png")
    table = render.summary_table({m: render.read_run(page.find(roots, m, "metrics.jsonl"))
                                  for m in MODELS})
    lines += ["Figure 2 (model1 against model5: train solid, validation dashed):", "",
              "![figure 2](figures/figure2_loss_curves.png)", "", table, ""]
  return lines


def listening_section(out_dir: pathlib.Path) -> list[str]:
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


def _min_cell(result: dict, key: str) -> str:
  return f"{min(result[key]):.0f}" if key in result else "-"


def ablation_section(roots: list[pathlib.Path]) -> list[str]:
  """One row per ablation run found (configs/ablation.py's rows): what it changed (its saved
  config against model5's), full-rate quality, the rate-distortion targets (PESQ at half the
  levels, digit accuracy at one level) and codebook use, all on the test split."""
  names = {ablation.WORKDIR_PREFIX + row: row for row in ablation.ROWS}
  runs = {name: page.find(roots, name, "eval.json") for name in names}
  runs = {name: (w, record.load(w), page.load_json(w / "config.json"))
          for name, w in runs.items() if (w / "eval.json").exists()}
  if not runs:
    return []
  steps = sorted({result["step"] for _, result, _ in runs.values()})
  lines = ["## RVQ-VAE ablation: the project's own recipe", "",
           "Each row: `python -m rvq_jax.main --config=configs/ablation.py:<row> "
           "--workdir=runs/abl_<row>`, then `--mode=evaluate`; steps: "
           f"{', '.join(map(str, steps))} (8 levels of 512 codes, batch 32). 'change': the fields "
           "of the row's saved config that differ from configs/model5.py's "
           "(`page.changed_fields`). Test split, scored by the shipped classifier; PESQ-nb/STOI "
           "are per-file means (corpus in brackets). 'half' decodes the first 4 of 8 levels, '1 "
           "level' the first only. Codebook use is over all test latent positions; in brackets "
           "over the positions that cover the recording, not its zero padding "
           "(quality.speech_codebook_metrics).", "",
           "| row | change | steps | PESQ-nb | STOI | LSD (dB) | SI-SDR (dB) | digit acc. | "
           "PESQ-nb, half | digit acc., 1 level | min usage | min perplexity (speech) | h |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  cell = render.perceptual_cell
  base = ablation.base_config()
  for name, (workdir, result, config) in runs.items():
    rec, rd, codebook = result["quality"]["reconstruction"], result["rate_distortion"], result[
        "codebook"]
    half, one = half_and_one_level(rd)
    hours = page.wall_seconds(writer.read_metrics(workdir), config["train"]["batch_size"]) / 3600
    lines.append(
        f"| {name} | `{page.changed_fields(workdir, base)}` | {result['step']} | "
        f"{cell(rec, 'pesq_nb', 2)} | "
        f"{cell(rec, 'stoi', 3)} | {rec['log_spectral_distance_db']:.2f} | {rec['si_sdr_db']:.2f} "
        f"| {rec['classifier_accuracy']:.3f} | {half['pesq_nb']:.2f} | "
        f"{one['classifier_accuracy']:.3f} | {min(codebook['usage']):.3f} | "
        f"{min(codebook['perplexity']):.0f} ({_min_cell(codebook.get('speech', {}), 'perplexity')}) "
        f"| {hours:.2f} |")
  return lines + [""]
