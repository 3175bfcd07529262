"""The results page's codec part (issue 32): rate-distortion beside the codecs people use, from the
records `benchmarks/rate_distortion.py` writes (`rate_distortion.json`: one row per codec and
setting, real bit rates). One table per record, its plot, and the models' PESQ-nb at each other
codec's bit rate (interpolated along the model's curve) with the difference: where the model's
curve lies below the others, and by how much.

Records live in `docs/codec/<set>/rate_distortion.json` (e.g. `test`, `espeak`); the renderers
here are also what the benchmark writes its own table and plot with.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

EXTERNAL = ("opus", "speex", "codec2", "mu-law")
# PESQ-nb levels at which the page lists each curve's bit rate (issue 32's targets are 3.5, 4.2).
QUALITY_LEVELS = (3.0, 3.5, 3.8, 4.0, 4.2, 4.35)


def curve_name(row: dict) -> str:
  """A row's curve: the model's folder for the RVQ-VAE rows, else the codec."""
  return row.get("model", row["codec"])


def table(record: dict) -> list[str]:
  """Markdown table of every row: codec and setting, payload and file kbit/s, the metrics."""
  lines = [f"{record['clips']} clips ({record['source']}), {record['seconds']:.0f} s; the judge's "
           f"digit accuracy on the uncoded clips {record['original_digit_accuracy']:.3f}. "
           "kbit/s: coded payload over duration (containers and headers left out alike); file: "
           "whole files.", "",
           "| codec | setting | kbit/s | file kbit/s | PESQ-nb | STOI | LSD (dB) | digit accuracy |",
           "|---|---|---|---|---|---|---|---|"]
  lines += [f"| {curve_name(r)} | {'levels ' if r['codec'] == 'rvq' else ''}{r['setting']} | "
            f"{r['kbps']:.2f} | {r['file_kbps']:.2f} | {r['pesq_nb']:.2f} | {r['stoi']:.3f} | "
            f"{r['lsd_db']:.2f} | {r['digit_accuracy']:.3f} |" for r in record["rows"]]
  return lines


def pesq_at(points: list[tuple[float, float]], kbps: float) -> float | None:
  """PESQ-nb of a curve [(kbit/s, PESQ)] at `kbps`: linear in log bit rate between its two
  neighbouring points; None outside the curve's range (no extrapolation)."""
  points = sorted(points)
  rates = np.log([p[0] for p in points])
  if not rates[0] <= np.log(kbps) <= rates[-1]:
    return None
  return float(np.interp(np.log(kbps), rates, [p[1] for p in points]))


def _envelope(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
  """(log kbit/s, PESQ) of a curve's points whose PESQ-nb is above every cheaper point's: the
  best quality the curve reaches at each rate, increasing, so a rate can be read off a PESQ."""
  best, kept = -np.inf, []
  for kbps, pesq in sorted(points):
    if pesq > best:
      best = pesq
      kept.append((np.log(kbps), pesq))
  return np.asarray([k[0] for k in kept]), np.asarray([k[1] for k in kept])


def rate_at(points: list[tuple[float, float]], pesq: float) -> float | None:
  """kbit/s a curve [(kbit/s, PESQ)] needs for PESQ-nb `pesq`: linear in log bit rate between
  its two neighbouring points (the inverse of `pesq_at`); None outside its range."""
  rates, quality = _envelope(points)
  if not quality[0] <= pesq <= quality[-1]:
    return None
  return float(np.exp(np.interp(pesq, quality, rates)))


def bd_rate(points: list[tuple[float, float]], reference: list[tuple[float, float]],
            samples: int = 256) -> tuple[float, float, float] | None:
  """(mean bit-rate difference of a curve from `reference` at equal PESQ-nb, as a fraction:
  -0.2 is 20% fewer bits; the PESQ-nb range it is taken over), the Bjontegaard delta rate with
  piecewise-linear curves in log rate instead of cubic fits: the mean of log-rate differences over
  the PESQ-nb range both curves cover. None where they share no range."""
  rates, quality = _envelope(points)
  ref_rates, ref_quality = _envelope(reference)
  lo, hi = max(quality[0], ref_quality[0]), min(quality[-1], ref_quality[-1])
  if not lo < hi:
    return None
  grid = np.linspace(lo, hi, samples)
  gap = np.interp(grid, quality, rates) - np.interp(grid, ref_quality, ref_rates)
  return float(np.expm1(gap.mean())), float(lo), float(hi)


def equal_quality(record: dict) -> list[str]:
  """Markdown: the bit rate each curve (Opus, Speex, each model curve) needs for each PESQ-nb of
  QUALITY_LEVELS, then each model curve's `bd_rate` against Opus and Speex."""
  names = list(dict.fromkeys(curve_name(r) for r in record["rows"]
                             if r["codec"] in ("opus", "speex", "rvq")))
  models = [n for n in names if n not in EXTERNAL]
  references = [n for n in names if n in EXTERNAL]
  if not models or not references:
    return []
  curves = {n: [(r["kbps"], r["pesq_nb"]) for r in record["rows"] if curve_name(r) == n]
            for n in names}
  lines = ["| PESQ-nb | " + " | ".join(f"{n}: kbit/s" for n in names) + " |",
           "|---|" + "---|" * len(names)]
  for level in QUALITY_LEVELS:
    cells = [rate_at(curves[n], level) for n in names]
    lines.append(f"| {level:g} | " + " | ".join("outside its range" if c is None else f"{c:.2f}"
                                                for c in cells) + " |")
  lines += ["", "| model curve | " + " | ".join(f"bit rate against {n}" for n in references)
            + " |", "|---|" + "---|" * len(references)]
  for m in models:
    cells = []
    for n in references:
      delta = bd_rate(curves[m], curves[n])
      cells.append("no shared PESQ-nb range" if delta is None else
                   f"{100 * delta[0]:+.0f}% (PESQ-nb {delta[1]:.2f}-{delta[2]:.2f})")
    lines.append(f"| {m} | " + " | ".join(cells) + " |")
  return lines


def equal_bits(record: dict) -> list[str]:
  """Per model curve: at each external codec's setting, the model's PESQ-nb at the same bit
  rate and the difference (model minus codec), markdown."""
  models = list(dict.fromkeys(curve_name(r) for r in record["rows"] if r["codec"] == "rvq"))
  others = [r for r in record["rows"] if r["codec"] in ("opus", "speex")]
  if not models or not others:
    return []
  lines = ["| codec | setting | kbit/s | its PESQ-nb | " + " | ".join(
      f"{m}: PESQ-nb (difference)" for m in models) + " |", "|---|---|---|---|" + "---|" * len(models)]
  for r in others:
    cells = []
    for m in models:
      ours = pesq_at([(x["kbps"], x["pesq_nb"]) for x in record["rows"] if curve_name(x) == m],
                     r["kbps"])
      cells.append("outside its range" if ours is None else
                   f"{ours:.2f} ({ours - r['pesq_nb']:+.2f})")
    lines.append(f"| {r['codec']} | {r['setting']} | {r['kbps']:.2f} | {r['pesq_nb']:.2f} | "
                 + " | ".join(cells) + " |")
  return lines


def figure(record: dict, path: pathlib.Path) -> None:
  """PESQ-nb against kbit/s (log axis), one curve per codec and per model, saved at `path`."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
  for curve in dict.fromkeys(curve_name(r) for r in record["rows"]):
    points = sorted((r["kbps"], r["pesq_nb"]) for r in record["rows"] if curve_name(r) == curve)
    ax.plot(*zip(*points), "o-" if curve not in EXTERNAL else "s--", label=curve)
  ax.set_xscale("log")
  ax.set_xlabel("kbit/s (coded payload over duration)")
  ax.set_ylabel("PESQ-nb")
  ax.set_title(f"{record['clips']} clips ({record['source']})")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)


def codec_section(out_dir: pathlib.Path) -> list[str]:
  """'### The codec beside Opus, Speex, Codec2 and G.711' from `<out_dir>/codec/*/` (`test`
  first, then the others by name); the records' figures are drawn there too. Empty when no record
  exists."""
  records = sorted((out_dir / "codec").glob("*/rate_distortion.json"),   # the test split first
                   key=lambda path: (path.parent.name != "test", path.parent.name))
  if not records:
    return []
  lines = ["### The codec beside Opus, Speex, Codec2 and G.711", "",
           "Real bitstreams (rvq_jax/bitstream.py; each record names the format of its model "
           "rows: format 3 codes each code under its context's counts, the level above, or for "
           "level 0 the code a frame earlier and the code a row below; format 4 under a small "
           "network of its level that reads 13 causal neighbours, the levels above and the row, "
           "rvq_jax/context_model.py; a model's first curve "
           "codes every position to the same number of levels, its 'variable depth' curve each "
           "position to its own depth, `codec.depth_tolerance`) against the external codecs' "
           "real files, every row scored by the same metric code (`benchmarks/rate_distortion.py`, which writes "
           "these records; its docstring has the commands). PESQ-nb and STOI are per-file means. "
           "A model row names its weights: pretrained/<name> is shipped, runs/abl_codec_<row> a "
           "row of configs/ablation.py (its docstring says how long each trained and what it "
           "found).",
           ""]
  if (out_dir / "audio" / "codec" / "index.md").exists():
    lines += ["To listen: [a few clips as each codec decodes them](audio/codec/index.md), at "
              "about equal bit rates (`benchmarks/rate_distortion.py --listen`).", ""]
  for path in records:
    record = json.loads(path.read_text())
    name = path.parent.name
    figure(record, path.parent / "rate_distortion.png")
    lines += [f"#### Rate-distortion: {record['clips']} clips ({record['source']})", "",
              *(["COMMANDS (the record is their rows together):", "",
                 *[f"- `{c}`" for c in record["commands"]]] if "commands" in record else
                [f"COMMAND: `{record['command']}`" if "command" in record else ""]), "",
              f"![rate-distortion, {name}](codec/{name}/rate_distortion.png)", ""]
    formats = sorted({f for row in record["rows"] for f in row.get("bitstream_format", [])})
    if formats:
      lines += [f"Bitstream format of the model rows: {', '.join(map(str, formats))}.", ""]
    lines += table(record) + [""]
    comparison = equal_bits(record)
    if comparison:
      lines += ["At equal bit rates: each model's PESQ-nb at the Opus and Speex settings' rates "
                "(interpolated in log bit rate along its curve), minus theirs:", ""]
      lines += comparison + [""]
    rates = equal_quality(record)
    if rates:
      lines += ["At equal quality: the bit rate each curve needs for a PESQ-nb (interpolated in "
                "log bit rate along the best point at or below each rate), and each model "
                "curve's mean bit-rate difference from Opus and Speex over the PESQ-nb range both "
                "reach (Bjontegaard's delta rate, with piecewise-linear curves in log rate "
                "instead of cubic fits; + means more bits than theirs). A curve's highest PESQ-nb "
                "bounds it: no coding of its codes goes past its deepest point.", ""]
      lines += rates + [""]
  return lines
