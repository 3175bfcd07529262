"""Test metrics of runs trained alike in different compute dtypes, side by side (issue 14, item 4).

COMMAND (from the repository root; each workdir trained and then evaluated with the same flags):
  for d in float32 bfloat16; do
    python -m rvq_jax.main --config=configs/model5.py --workdir=runs/m5_500_$d \
        --config.train.num_steps=500 --config.model.compute_dtype=$d
    python -m rvq_jax.main --config=configs/model5.py --workdir=runs/m5_500_$d \
        --config.train.num_steps=500 --config.model.compute_dtype=$d --mode=evaluate
  done
  python benchmarks/dtype_quality.py runs/m5_500_float32 runs/m5_500_bfloat16

Prints one markdown table: validation loss at the last step (metrics.jsonl), and from eval.json the
test loss, spectrogram MSE, digit accuracy (shipped classifier), PESQ-nb, STOI, and codebook use
(dead codes and perplexity per level).
"""

import json
import pathlib
import sys

sys.path.insert(0, ".")
from rvq_jax.eval import record  # noqa: E402  pylint: disable=g-import-not-at-top
from rvq_jax.train import writer  # noqa: E402  pylint: disable=g-import-not-at-top


def row(workdir: pathlib.Path) -> dict:
  config = json.loads((workdir / "config.json").read_text())
  result = record.load(workdir)   # eval.json, older schemas read as the current one
  records = writer.read_metrics(workdir)
  val = [r for r in records if r["split"] == "validation"][-1]
  rec = result.get("quality", {}).get("reconstruction", {})
  codebook = result["codebook"]
  return {
      "run": workdir.name, "compute dtype": config["model"]["compute_dtype"],
      "steps": result["step"], "validation loss": f"{val['loss']:.4f}",
      "test loss": f"{result['test']['loss']['total']:.4f}",
      "test spectrogram MSE": f"{result['test']['spectrogram_mse']:.4f}",
      "digit accuracy": f"{rec['classifier_accuracy']:.3f}" if rec else "-",
      "PESQ-nb": f"{rec['pesq_nb']:.2f}" if rec else "-",
      "STOI": f"{rec['stoi']:.3f}" if rec else "-",
      "dead codes per level": " ".join(f"{d:.0f}" for d in codebook["dead_codes"]),
      "perplexity per level": " ".join(f"{p:.0f}" for p in codebook["perplexity"]),
  }


def main(workdirs: list[str]) -> None:
  rows = [row(pathlib.Path(w)) for w in workdirs]
  keys = list(rows[0])
  print("| " + " | ".join(keys) + " |")
  print("|" + "---|" * len(keys))
  for r in rows:
    print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
  if len(sys.argv) < 2:
    sys.exit("usage: python benchmarks/dtype_quality.py WORKDIR [WORKDIR ...]")
  main(sys.argv[1:])
