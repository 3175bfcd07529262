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
           "1,000-step probe of configs/ablation.py (its docstring says what each probe found).",
           ""]
  for path in records:
    record = json.loads(path.read_text())
    name = path.parent.name
    figure(record, path.parent / "rate_distortion.png")
    lines += [f"#### Rate-distortion: {record['clips']} clips ({record['source']})", "",
              f"COMMAND: `{record['command']}`" if "command" in record else "", "",
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
  return lines
