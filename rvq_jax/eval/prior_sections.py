"""The results page's prior parts: the shipped prior against its targets, the same prior on
model5, and the prior ablation table. Each renderer returns the markdown lines of its section (its
first line the heading); `results` assembles them."""

from __future__ import annotations

import pathlib

import numpy as np

from rvq_jax.configs import prior_ablation
from rvq_jax.eval import page
from rvq_jax.eval import thresholds
from rvq_jax.eval.thresholds import PLATEAU_TOLERANCE
from rvq_jax.eval.thresholds import PLATEAU_WINDOW_STEPS
from rvq_jax.train import writer

SHIPPED_PRIOR = "prior"   # <root>/prior: the shipped prior (pretrained/prior)
# <root>/prior_model5_plateau: the same prior on the study's model5, trained to its plateau
# (a record-only export in docs/ablation).
MODEL5_PRIOR = "prior_model5_plateau"
# <root>/prior_anchor: the autoregressive anchor (configs/code_transformer.py; a record-only
# export in docs/ablation).
ANCHOR = "prior_anchor"


def _sample_cells(row: dict) -> str:
  """IS | FD | class shares | requested digit (worst digit) | near-silent / clipped | memorised."""
  per_digit = [a for a in row.get("requested_digit_accuracy_per_digit") or [] if a is not None]
  requested = (f"{row['requested_digit_accuracy']:.3f}" + (f" ({min(per_digit):.2f})"
               if per_digit else "")) if "requested_digit_accuracy" in row else "-"
  defects = (f"{page.fraction(row['near_silent_fraction'])} / {page.fraction(row['clipped_fraction'])}"
             if "near_silent_fraction" in row else "-")
  memo = row.get("memorization")
  memorised = page.fraction(memo["fraction_closer_than_1st_percentile_of_real_test"]) if memo else "-"
  # A set against itself scores 0 up to rounding: no "-0.0".
  fd = f"{max(row['frechet_distance'], 0.0):.1f}" if "frechet_distance" in row else "-"
  return (f"{row['inception_score']:.2f} | {fd} | {page.histogram_range(row['class_histogram'])} | "
          f"{requested} | {defects} | {memorised}")


_SAMPLE_HEADER = ("IS | FD | class shares | requested digit (worst digit) | near-silent / clipped "
                  "| memorised")


def shipped_setting(result: dict) -> dict | None:
  """The scored row of prior_eval.json at the setting its WAVs and figures were drawn at (the
  config's `sample.temperature` / `sample.snap`, also `--mode=sample`'s); None in records written
  before it was recorded."""
  sampling = result.get("sampling")
  return next((r for r in result["samples"] if sampling and r["temperature"] ==
               sampling["temperature"] and r["snap"] == sampling["snap"]
               and r.get("guidance", 0.0) == sampling.get("guidance", 0.0)
               and not r.get("unconditional")), None)


def unconditional_setting(result: dict) -> dict | None:
  """The scored row of the samples drawn without a digit (a flow trained with dropped labels),
  if any."""
  return next((r for r in result["samples"] if r.get("unconditional")), None)


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
  t = thresholds
  low, high = t.PRIOR_CLASS_SHARE
  return [
      (f"Inception Score >= {t.PRIOR_IS_SHARE_OF_REAL:.0%} of the real test set's",
       f"{row['inception_score']:.2f} = {row['inception_score'] / real_is:.0%} of {real_is:.2f}",
       row["inception_score"] >= t.PRIOR_IS_SHARE_OF_REAL * real_is),
      (f"every digit {low:.0%}-{high:.0%} of the samples", page.histogram_range(hist),
       min(hist) >= low and max(hist) <= high),
      (f"requested digit recognised >= {t.PRIOR_REQUESTED_DIGIT:.0%}, every digit",
       (f"{row['requested_digit_accuracy']:.3f} overall; worst digit {worst}: {min(per_digit):.3f}"
        if per_digit else "-"), bool(per_digit) and min(per_digit) >= t.PRIOR_REQUESTED_DIGIT),
      ("Fréchet distance below the decoded noisy test latents'",
       f"{row['frechet_distance']:.1f} vs {ceiling:.1f}", row["frechet_distance"] < ceiling),
      (f"<= {t.PRIOR_DEFECTS:.0%} near-silent, <= {t.PRIOR_DEFECTS:.0%} clipped",
       f"{page.fraction(row['near_silent_fraction'])} / {page.fraction(row['clipped_fraction'])}",
       row["near_silent_fraction"] <= t.PRIOR_DEFECTS and row["clipped_fraction"] <= t.PRIOR_DEFECTS),
      (f"memorised (closer to a training clip than the closest 1% of test clips) < "
       f"{t.PRIOR_MEMORISED:.0%}", page.fraction(memo), memo < t.PRIOR_MEMORISED)]


def scorer_rows(result: dict, row: dict) -> dict:
  """{scorer: its core scores of `row`} ('judge' alone for records with one scorer)."""
  return row.get("by_scorer") or {"judge": row}


def ceiling_target_rows(result: dict, row: dict) -> list[tuple[str, str, bool]]:
  """(target, reached, met) for issue 29's targets of one scored setting against the ceiling
  (real held-out latents decoded, same scorers, same size); each scored under every scorer, the
  worse counts. Empty for records written before the ceiling was scored."""
  refs = result["references"]
  if "ceiling" not in refs:
    return []
  t = thresholds
  ceiling, sample = scorer_rows(result, refs["ceiling"]), scorer_rows(result, row)
  names = list(sample)

  def worst(fn, best=min):
    values = {n: fn(n) for n in names}
    name = best(values, key=values.get)
    return values[name], name, values

  def shown(values, fmt):
    return ", ".join(f"{n} {fmt.format(v)}" for n, v in values.items())

  is_share, _, is_all = worst(lambda n: sample[n]["inception_score"]
                              / ceiling[n]["inception_score"])
  fd_factor, _, fd_all = worst(lambda n: sample[n]["frechet_distance_matched"]
                               / ceiling[n]["frechet_distance_matched"], best=max)
  rows = [
      (f"Inception Score >= {t.CEILING_IS_SHARE:.0%} of the ceiling's (worse scorer)",
       shown(is_all, "{:.0%}"), is_share >= t.CEILING_IS_SHARE),
      (f"size-matched Fréchet distance <= {t.CEILING_FD_FACTOR:g}x the ceiling's (worse scorer)",
       shown(fd_all, "{:.1f}x"), fd_factor <= t.CEILING_FD_FACTOR)]
  if "requested_digit_accuracy" in row:
    overall, _, overall_all = worst(lambda n: sample[n]["requested_digit_accuracy"])
    per_digit, _, digit_all = worst(lambda n: min(
        a for a in sample[n]["requested_digit_accuracy_per_digit"] if a is not None))
    low, each = t.CEILING_REQUESTED
    rows.append((f"requested digit >= {low:.0%} overall, >= {each:.0%} every digit (worse "
                 "scorer)", f"overall {shown(overall_all, '{:.3f}')}; worst digit "
                 f"{shown(digit_all, '{:.2f}')}", overall >= low and per_digit >= each))
  free = row if "requested_digit_accuracy" not in row else unconditional_setting(result)
  if free is not None:   # the unconditional samples' class shares, under every scorer
    low, high = t.CEILING_UNCONDITIONAL_SHARE
    hists = {n: s["class_histogram"] for n, s in scorer_rows(result, free).items()}
    rows.append((f"unconditional class shares {low:.0%}-{high:.0%} (every scorer)",
                 ", ".join(f"{n} {page.histogram_range(h)}" for n, h in hists.items()),
                 all(min(h) >= low and max(h) <= high for h in hists.values())))
  defects = max(row["near_silent_fraction"], row["clipped_fraction"])
  memo = row["memorization"]["fraction_closer_than_1st_percentile_of_real_test"]
  rows += [(f"<= {t.CEILING_DEFECTS:.0%} near-silent or clipped",
            f"{page.fraction(row['near_silent_fraction'])} / "
            f"{page.fraction(row['clipped_fraction'])}", defects <= t.CEILING_DEFECTS),
           (f"memorised < {t.PRIOR_MEMORISED:.0%}", page.fraction(memo), memo < t.PRIOR_MEMORISED)]
  return rows


def _ceiling_table(result: dict, row: dict) -> list[str]:
  """Per scorer: the setting's samples beside the ceiling and the size-matched real held-out
  clips (Fréchet distances against the real test set, all at the held-out set's size)."""
  refs = result["references"]
  if "ceiling" not in refs:
    return []
  lines = ["| scorer | set | FD, size-matched | IS | requested digit | mean top probability |",
           "|---|---|---|---|---|---|"]
  for name in scorer_rows(result, row):
    for label, r in (("real held-out clips", refs["real_heldout"]),
                     ("ceiling (held-out latents decoded)", refs["ceiling"]),
                     (f"samples {_setting_name(row)}", row)):
      s = scorer_rows(result, r)[name]
      requested = (f"{s['requested_digit_accuracy']:.3f}" if "requested_digit_accuracy" in s
                   else "-")
      lines.append(f"| {name} | {label} | {s['frechet_distance_matched']:.1f} | "
                   f"{s['inception_score']:.2f} | {requested} | "
                   f"{s['mean_top_probability']:.3f} |")
  return lines + [""]


def _validation_curve(records: list[dict]) -> list[tuple[int, float]]:
  """(step, validation bits/dim) of a prior's metrics.jsonl records, in order."""
  return [(r["step"], r["bits_per_dim"]) for r in page.validation_records(records)]


def _bound_curve(records: list[dict], points: int = 12) -> str:
  val = _validation_curve(records)
  if not val:
    return "-"
  stride = max(1, len(val) // points)
  shown = val[::stride] + ([val[-1]] if (len(val) - 1) % stride else [])
  return ", ".join(f"{step}: {bpd:.3f}" for step, bpd in shown)


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
    instead = ", ".join(f"{d} ({page.fraction(n / total)})" for n, d in others) or "-"
    lines.append(f"| {digit} | {page.fraction(heard[digit] / total)} | {page.fraction(quiet)} | "
                 f"{instead} |")
  return lines


def _prior_run_section(folder: pathlib.Path, out_dir: pathlib.Path, heading: str,
                       export: str, shipped: bool) -> list[str]:
  """One fully trained prior: command, target, bound curve, targets, every scored setting; the
  shipped one also with its figures and WAVs (copied into out_dir as prior_*)."""
  result, config = page.load_json(folder / "prior_eval.json"), page.load_json(folder / "config.json")
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
           + (" --config.prior.label_conditioning=True --config.prior.label_dropout="
              f"{config['prior'].get('label_dropout', 0.0)}"
              if config["prior"].get("label_conditioning") else "")
           + (f" --config.sample.guidance={config['sample']['guidance']}"
              if config["sample"].get("guidance") else "")
           + f" --config.sample.temperature={config['sample']['temperature']}"
           + "`, then `--mode=export "
           f"--output={export}"
           + ("`. Sample sevens from it: `python -m rvq_jax.main "
              f"--config=configs/realnvp.py --workdir={export} --mode=sample "
              "--config.sample.digit=7 --output=runs/sevens`." if shipped else " --weights=false` (the record only)."),
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
           *(["Against the ceiling and a size-matched real reference, under every scorer (issue "
               "29; the worse scorer decides):", "", *_ceiling_table(result, row),
               "| target | reached | met |", "|---|---|---|",
               *[f"| {name} | {value} | {'yes' if met else '**no**'} |"
                 for name, value, met in ceiling_target_rows(result, row)], ""]
             if "ceiling" in result["references"] else []),
           f"Targets at its sampling setting ({_setting_name(row)}, "
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
    lines.append(f"| samples {_setting_name(r)} | {_sample_cells(r)} |")
  lines.append("")
  if not shipped:
    return lines
  for name, caption in (("figure3_sample_0.png", "Figure 3: a sampled latent (first channel) "
                         "beside its decoded spectrogram"),
                        ("class_grid.png", "Class-conditional samples, one row per requested "
                         "digit; above each, the digit the classifier hears")):
    target = out_dir / "figures" / f"prior_{name}"
    if page.kept_figure(folder / "figures" / name, target):
      lines += [f"{caption}:", "", f"![{name[:-4]}](figures/{target.name})", ""]
  wavs = sorted((out_dir / "audio").glob("prior_digit*.wav"))
  if wavs:
    lines += [f"Listening: {len(wavs)} samples in `docs/audio/prior_digit<d>_<a|b>.wav`, the "
              "grid's first two of each digit (the WAVs `<d>_sample_<d>` and `<d>_sample_1<d>` "
              "that the evaluation writes at its sampling setting).", ""]
  return lines


def prior_ablation_section(roots: list[pathlib.Path]) -> list[str]:
  """One row group per prior ablation run found (configs/prior_ablation.py's rows): what it
  changed (its saved config against the rows' base), its bound, and every scored setting."""
  names = {prior_ablation.WORKDIR_PREFIX + row: row for row in prior_ablation.ROWS}
  runs = {name: page.find(roots, name, "prior_eval.json") for name in names}
  runs = {name: (w, page.load_json(w / "prior_eval.json")) for name, w in runs.items()
          if (w / "prior_eval.json").exists()}
  if not runs:
    return []
  steps = sorted({r["step"] for _, r in runs.values()})
  lines = ["### Prior ablation", "",
           "Each row: `python -m rvq_jax.main --config=configs/prior_ablation.py:<row> "
           f"--workdir=runs/prior_<row>`; steps: {', '.join(map(str, steps))}. 'change': the "
           "fields of the row's saved config that differ from the rows' base "
           "(`prior_ablation.base_config()`: configs/realnvp.py on pretrained/model6, "
           "dequantization 0.1, as the rows were first run, the digit in the base only and no "
           "guidance; the shipped recipe is the row cfg_full; `page.changed_fields`). Bound: test bits "
           "per dimension of the grid-snapped latents (comparable between rows with the same "
           "target only). Samples at each scored temperature T, snapped to the RVQ code path where "
           "marked.", "",
           f"| row | change | steps | bound | T | snap | {_SAMPLE_HEADER} | second scorer: FD "
           "size-matched, IS / ceiling's, requested (worst digit) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  base = prior_ablation.base_config()
  for name, (workdir, result) in runs.items():
    for i, row in enumerate(result["samples"]):   # the run's name, change and bound once
      first = (f"{name} | `{page.changed_fields(workdir, base)}` | {result['step']} | "
               f"{result['bits_per_dim']['test']:.3f}" if i == 0 else " | | | ")
      guided = f", guidance {row['guidance']:g}" if row.get("guidance") else ""
      lines.append(f"| {first} | {row['temperature']}{guided} | {'yes' if row['snap'] else 'no'} | "
                   f"{_sample_cells(row)} | {_second_scorer_cell(result, row)} |")
  return lines + [""]


def _second_scorer_cell(result: dict, row: dict) -> str:
  """The second scorer's size-matched FD, IS as a share of its ceiling's, and requested-digit
  accuracy (worst digit) of one scored setting; '-' for records scored by the judge alone."""
  second = row.get("by_scorer", {}).get("second")
  ceiling = result["references"].get("ceiling", {}).get("by_scorer", {}).get("second")
  if not second or not ceiling:
    return "-"
  requested = ""
  if "requested_digit_accuracy" in second:
    worst = min(a for a in second["requested_digit_accuracy_per_digit"] if a is not None)
    requested = f", {second['requested_digit_accuracy']:.3f} ({worst:.2f})"
  return (f"{second['frechet_distance_matched']:.1f}, "
          f"{second['inception_score'] / ceiling['inception_score']:.0%}{requested}")


def _setting_name(row: dict) -> str:
  """How a scored setting is named on the page: 'T=0.7', 'T=0.7, snapped, guidance 1'."""
  return (f"T={row['temperature']}" + (", snapped" if row.get("snap") else "")
          + (f", guidance {row['guidance']:g}" if row.get("guidance") else "")
          + (", no digit (unconditional)" if row.get("unconditional") else ""))


def anchor_comparison_rows(flow: dict, anchor: dict) -> list[str]:
  """Per scorer, the flow's shipped setting beside each of the anchor's scored settings: the
  size-matched Fréchet distance, IS and requested digit, each also as a share of the model's own
  ceiling (markdown rows of a 7-column table)."""
  flow_row = shipped_setting(flow)
  lines = []
  for name in scorer_rows(flow, flow_row):
    for label, result, row in ([("flow (shipped prior)", flow, flow_row)]
                               + [("anchor", anchor, r) for r in anchor["samples"]]):
      s = scorer_rows(result, row).get(name)
      ceiling = scorer_rows(result, result["references"]["ceiling"]).get(name)
      if s is None or ceiling is None:
        continue
      lines.append(
          f"| {name} | {label} | {_setting_name(row)} | {s['frechet_distance_matched']:.1f} "
          f"({s['frechet_distance_matched'] / ceiling['frechet_distance_matched']:.1f}x) | "
          f"{s['inception_score']:.2f} ({s['inception_score'] / ceiling['inception_score']:.0%}) "
          f"| {s.get('requested_digit_accuracy', float('nan')):.3f} |")
  return lines


def anchor_section(roots: list[pathlib.Path]) -> list[str]:
  """The autoregressive anchor (issue 29): its likelihood, its samples against its ceiling (the
  VQ-VAE's own reconstructions) and beside the shipped flow, under every scorer."""
  folder = page.find(roots, ANCHOR, "prior_eval.json")
  anchor, config = page.load_json(folder / "prior_eval.json"), page.load_json(folder / "config.json")
  if not anchor or not config:
    return []
  flow = page.load_json(page.find(roots, SHIPPED_PRIOR, "prior_eval.json") / "prior_eval.json")
  t, c = anchor["target"], anchor["transformer"]
  lines = ["### Autoregressive anchor", "",
           "COMMAND: `python -m rvq_jax.main --config=configs/code_transformer.py "
           f"--workdir=runs/{ANCHOR}`, then `--mode=export --weights=false "
           f"--output=docs/ablation/{ANCHOR}`.", "",
           f"What the keras-io VQ-VAE example samples with (a PixelCNN over code indices), as a "
           f"small causal transformer: the {t['levels']} RVQ levels of "
           f"`{config['vqvae_workdir']}`'s {t['grid'][0]}x{t['grid'][1]} latent grid, time-major, "
           f"{t['rows_per_token']} frequency rows per token; width {c['width']}, depth "
           f"{c['depth']}, dropout {c['dropout']}; {anchor['step']} steps. Exact held-out "
           f"likelihood: validation {anchor['bits_per_code']['validation']:.3f}, test "
           f"{anchor['bits_per_code']['test']:.3f} bits per code"
           + (f" (uniform over its {t['codes']} codes: {np.log2(t['codes']):.0f})"
              if isinstance(t.get("codes"), int) else "") + ". Its ceiling is the VQ-VAE itself (held-out codes "
           "decoded).", ""]
  for row in anchor["samples"]:
    lines += [f"At T={row['temperature']} ({row['examples']} samples; first-level code maps "
              f"copied from a training clip: {page.fraction(row['copied_first_level_fraction'])}):",
              "", *_ceiling_table(anchor, row), "| target | reached | met |", "|---|---|---|",
              *[f"| {name} | {value} | {'yes' if met else '**no**'} |"
                for name, value, met in ceiling_target_rows(anchor, row)], ""]
  best = max(min(s.get("requested_digit_accuracy", 0.0)
                 for s in scorer_rows(anchor, row).values()) for row in anchor["samples"])
  if best <= thresholds.ANCHOR_LEARNED_REQUESTED:
    lines += [f"Its samples are heard as the requested digit at chance level (best setting, worse "
              f"scorer: {best:.3f}; chance 0.1): this anchor has not learned to speak digits, so "
              "it is no baseline yet, and the comparison below shows only that.", ""]
  if flow and shipped_setting(flow) is not None and "ceiling" in flow["references"]:
    lines += ["The shipped flow beside the anchor (size-matched FD and IS, each with its share of "
              "its own model's ceiling; lower FD and higher IS are better):", "",
              "| scorer | prior | setting | FD, size-matched (x ceiling) | IS (of ceiling) | "
              "requested digit |", "|---|---|---|---|---|---|",
              *anchor_comparison_rows(flow, anchor), ""]
  return lines


def prior_section(roots: list[pathlib.Path], out_dir: pathlib.Path) -> list[str]:
  """The RealNVP prior: the shipped prior against the targets, the same on model5, the ablation."""
  lines = ["## RealNVP prior", "",
           "Samples are scored with the shipped digit classifier ('judge', calibrated; and, in "
           "records that carry it, with the independently built second scorer "
           "pretrained/classifier_mel, 'second'): Inception Score (IS, at most 10), "
           "Fréchet distance (FD) of classifier embeddings to the real test set, the range of the "
           "class shares (ideal 10% each), the share recognised as the requested digit overall "
           "(and for the worst digit), near-silent (RMS below -55 dBFS) and clipped samples, and "
           "the memorised share: samples closer (classifier space) to a training clip than the "
           "closest 1% of real test clips, which are certainly not copies.", ""]
  lines += _prior_run_section(page.find(roots, SHIPPED_PRIOR, "prior_eval.json"), out_dir,
                              f"### The shipped prior (`pretrained/{SHIPPED_PRIOR}`)",
                              f"pretrained/{SHIPPED_PRIOR}", shipped=True)
  lines += _prior_run_section(page.find(roots, MODEL5_PRIOR, "prior_eval.json"), out_dir,
                              "### The same prior on the study's model5",
                              f"docs/ablation/{MODEL5_PRIOR}", shipped=False)
  return lines + anchor_section(roots) + prior_ablation_section(roots)
