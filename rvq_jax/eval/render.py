"""Markdown from eval.json records (`rvq_jax.eval.record`, schema 2): the one renderer behind a
run's report.md (`quality.evaluate_vqvae`), docs/RESULTS.md (`eval.results`) and the comparison
table (`eval.compare`). Every function takes records, never paths to read twice.
"""

from __future__ import annotations

import math

import numpy as np

from rvq_jax.eval import record
from rvq_jax.train import writer

PERCEPTUAL_NOTE = ("PESQ-nb and STOI: the mean over the files each can score (FSDD clips are "
                   "often too short), and in brackets the corpus value (STOI: all clips "
                   "concatenated; PESQ: 8 s segments of the concatenation).")


def perceptual_cell(row: dict, key: str, digits: int) -> str:
  """'per-file mean (corpus)' of a PESQ or STOI entry; '-' in rows written before they existed."""
  if key not in row:
    return "-"
  return f"{row[key]:.{digits}f} ({row[key + '_corpus']:.{digits}f})"


# Columns of the quality tables: (header, cell of a row), one definition for every table.
_COLUMNS = {
    "spectrogram_mse": ("spectrogram MSE", lambda r: f"{r['spectrogram_mse']:.4f}"),
    "pesq_nb": ("PESQ-nb", lambda r: perceptual_cell(r, "pesq_nb", 2)),
    "stoi": ("STOI", lambda r: perceptual_cell(r, "stoi", 3)),
    "si_sdr_db": ("SI-SDR (dB)", lambda r: f"{r['si_sdr_db']:.2f}"),
    "log_spectral_distance_db": ("LSD (dB)", lambda r: f"{r['log_spectral_distance_db']:.2f}"),
    "mr_stft_distance": ("MR-STFT", lambda r: f"{r['mr_stft_distance']:.3f}"),
    "classifier_accuracy": ("digit accuracy", lambda r: f"{r['classifier_accuracy']:.3f}"),
}


def _table(first: str, labelled_rows, columns) -> list[str]:
  """A markdown table: a label column headed `first`, then `columns` (keys of _COLUMNS)."""
  lines = [f"| {first} | " + " | ".join(_COLUMNS[c][0] for c in columns) + " |",
           "|---|" + "---|" * len(columns)]
  return lines + [f"| {label} | " + " | ".join(_COLUMNS[c][1](row) for c in columns) + " |"
                  for label, row in labelled_rows]


def quality_table(result: dict) -> list[str]:
  """Reconstructions, originals and the no-model baselines: PESQ, STOI, SI-SDR, LSD, MR-STFT and
  digit accuracy (needs an evaluated record: `quality`)."""
  q = result["quality"]
  columns = ("pesq_nb", "stoi", "si_sdr_db", "log_spectral_distance_db", "mr_stft_distance",
             "classifier_accuracy")
  lines = _table("", [("reconstructions", q["reconstruction"])] + [
      (f"baseline: {b}", r) for b, r in q["baselines"].items()], columns)
  originals = "| test originals | " + "- | " * (len(columns) - 1) + (
      f"{q['original_classifier_accuracy']:.3f} |")
  return lines[:2] + [originals] + lines[2:]


def rate_distortion_table(result: dict) -> list[str]:
  """One row per number of decoded levels, with its nominal kbit/s (needs an evaluated record)."""
  return _table("levels (kbit/s)", [
      (f"{r['levels']} ({r['nominal_bits_per_second'] / 1000:.1f})", r)
      for r in result["rate_distortion"]],
      ("spectrogram_mse", "pesq_nb", "stoi", "si_sdr_db", "log_spectral_distance_db",
       "classifier_accuracy"))


def codebook_table(result: dict) -> list[str]:
  """Per level: perplexity (all positions, and the speech positions when evaluated), usage and
  dead codes."""
  c = result["codebook"]
  speech = c.get("speech", {}).get("perplexity", [None] * len(c["usage"]))
  lines = ["| level | perplexity | perplexity (speech) | usage | dead codes |",
           "|---|---|---|---|---|"]
  for level, (p, ps, u, d) in enumerate(zip(c["perplexity"], speech, c["usage"],
                                            c["dead_codes"])):
    lines.append(f"| {level} | {p:.1f} | {'-' if ps is None else f'{ps:.1f}'} | {u:.3f} | "
                 f"{d:.0f} |")
  return lines


def bit_rate_sentence(result: dict) -> str:
  c = result["codebook"]
  return (f"{c['nominal_bits_per_second'] / 1000:.1f} kbit/s nominal, "
          f"{c['entropy_bits_per_second'] / 1000:.1f} kbit/s entropy")


def loss_sentence(result: dict) -> str:
  loss = result["test"]["loss"]
  rec = loss["reconstruction"]
  return (f"Test losses: total {loss['total']:.4f}"
          + (f", reconstruction {rec:.4f}" if rec is not None else "")
          + f", commitment {loss['commitment']:.4f}; spectrogram MSE "
          f"{result['test']['spectrogram_mse']:.4f}.")


def report_page(name: str, result: dict) -> str:
  """A run's report.md: quality, rate-distortion and codebook use of an evaluated record."""
  speech = result["codebook"].get("speech", {}).get("position_fraction", math.nan)
  lines = [f"# {name}: test-split evaluation (step {result['step']})", "",
           f"{result['examples']} test recordings. Bit rate {bit_rate_sentence(result)}.", "",
           PERCEPTUAL_NOTE, ""]
  lines += quality_table(result)
  lines += ["", loss_sentence(result), ""]
  lines += rate_distortion_table(result)
  lines += ["", "Codebook use over all test latent positions, and the perplexity over the "
            f"{speech:.0%} of positions that cover the recordings (the rest is zero padding, "
            "which takes one code).", ""]
  lines += codebook_table(result)
  lines += ["", "![rate-distortion](figures/rate_distortion.png)",
            "![codebook usage](figures/codebook_usage.png)",
            "![loss curves](figures/loss_curves.png)", ""]
  return "\n".join(lines)


def summary_table(runs: dict) -> str:
  """Markdown table of each run's last train/validation epoch and its test record.

  runs: {run name: (its metrics.jsonl records, its eval.json record or None)}; runs without
  metrics are left out. The quality columns are filled once `--mode=evaluate` has run (PESQ-nb and
  STOI: per-file mean, corpus value in brackets; digit accuracy of the reconstructions).
  """
  header = ("| run | epochs | steps | train loss | val loss | val rec | val commit | test spec. MSE |"
            " PESQ-nb | STOI | digit accuracy | test perplexity per level |"
            " test dead codes per level | kbit/s (nominal / entropy) |")
  lines = [header, "|" + "---|" * 14]
  fmt = lambda xs: " ".join(f"{x:.0f}" for x in xs) if xs else "-"
  for name, (records, result) in runs.items():
    if not records:
      continue
    train = [r for r in records if r["split"] == "train"][-1]
    val = [r for r in records if r["split"] == "validation"][-1]
    result = result or {}
    rec = result.get("quality", {}).get("reconstruction", {})
    codebook = result.get("codebook", {})
    accuracy = f"{rec['classifier_accuracy']:.3f}" if "classifier_accuracy" in rec else "-"
    mse = result.get("test", {}).get("spectrogram_mse", np.nan)
    lines.append(
        f"| {name} | {val['epoch']} | {val['step']} | {train['loss']:.4f} | {val['loss']:.4f} | "
        f"{val['reconstruction']:.4f} | {val['commitment']:.4f} | {mse:.4f} | "
        f"{perceptual_cell(rec, 'pesq_nb', 2)} | {perceptual_cell(rec, 'stoi', 3)} | {accuracy} | "
        f"{fmt(codebook.get('perplexity'))} | {fmt(codebook.get('dead_codes'))} | "
        f"{codebook.get('nominal_bits_per_second', np.nan) / 1000:.1f} / "
        f"{codebook.get('entropy_bits_per_second', np.nan) / 1000:.1f} |")
  return "\n".join(lines) + "\n"


def read_run(workdir) -> tuple[list, dict | None]:
  """(metrics.jsonl records, eval.json record) of a workdir, for `summary_table`."""
  return writer.read_metrics(workdir), record.load(workdir)
