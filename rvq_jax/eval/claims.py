"""The original study's claims, each checked on the runs it is about (docs/RESULTS.md, "The
study's claims, checked"): the evidence and a verdict per claim; tolerances in `thresholds`."""

from __future__ import annotations

import pathlib

from rvq_jax.eval import page
from rvq_jax.eval import record
from rvq_jax.eval.thresholds import MARGINAL_GAIN
from rvq_jax.eval.thresholds import RISE_TOLERANCE
from rvq_jax.train import writer


def loss_rises(records: list[dict], key: str = "loss") -> list[tuple[int, float, float]]:
  """(epoch, previous value, value) of every validation epoch whose `key` rose over the one before."""
  val = page.validation_records(records)
  return [(b["epoch"], a[key], b[key]) for a, b in zip(val, val[1:]) if b[key] > a[key]]


def claim_commitment(records: list[dict]) -> tuple[str, str]:
  """The study: model1's commitment loss rises early and then stays above the reconstruction."""
  val = page.validation_records(records)
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


def claim_glorot(uniform: list[dict], glorot: list[dict]) -> tuple[str, str]:
  """The study: Glorot-normal codebooks (model2) are a marginal gain over uniform ones (model1)."""
  by_step = {r["step"]: r for r in page.validation_records(uniform)}
  common = [r for r in page.validation_records(glorot) if r["step"] in by_step]
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


def claim_gaussian(mse_result: dict, gaussian_result: dict) -> tuple[str, str]:
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


def claim_falls(records: list[dict]) -> tuple[str, str]:
  """The study: model5's losses fall throughout training."""
  val = page.validation_records(records)
  rises = loss_rises(records)
  big = [(e, a, b) for e, a, b in rises if b - a > RISE_TOLERANCE * a]
  largest = max(((b - a) / a for _, a, b in rises), default=0.0)
  evidence = (f"validation loss {val[0]['loss']:.4f} (epoch 1) -> {val[-1]['loss']:.4f} (epoch "
              f"{val[-1]['epoch']}); it rose in {len(rises)} of {len(val) - 1} epochs, the largest "
              f"rise {largest:.1%}, {len(big)} above {RISE_TOLERANCE:.0%}")
  return evidence, "yes" if not big and val[-1]["loss"] < val[0]["loss"] else "no"


def study_claims_section(roots: list[pathlib.Path]) -> list[str]:
  """The study's four claims, each with the numbers that decide it (or the run it still needs)."""
  runs = {m: writer.read_metrics(page.find(roots, m, "metrics.jsonl")) for m in
          ("model1", "model2", "model3", "model5")}
  results = {m: record.load(page.find(roots, m, "eval.json")) for m in ("model2", "model3")}

  def needs(*names):
    missing = [n for n in names if not runs[n]]
    return (f"needs `runs/{missing[0]}` (`python -m rvq_jax.main --config=configs/{missing[0]}.py "
            f"--workdir=runs/{missing[0]}`)", "not measured") if missing else None

  rows = [("model1's commitment loss rises early and outpaces the reconstruction",
           needs("model1") or claim_commitment(runs["model1"])),
          ("the same on model2 (model1 with Glorot codebooks)",
           needs("model2") or claim_commitment(runs["model2"])),
          ("Glorot-normal codebooks are a marginal gain (model2 against model1)",
           needs("model1", "model2") or claim_glorot(runs["model1"], runs["model2"])),
          ("the Gaussian decoder is worse (model3 against model2)",
           (claim_gaussian(results["model2"], results["model3"])
            if results["model2"] and results["model3"] and "quality" in results["model2"]
            and "quality" in results["model3"] else needs("model2", "model3")
            or ("needs `--mode=evaluate` on model2 and model3", "not measured"))),
          ("model5's losses fall throughout", needs("model5") or claim_falls(runs["model5"]))]
  lines = ["### The study's claims, checked", "",
           "Each claim of the original report against the runs above (`claims.study_claims_section`"
           f"; a rise of more than {RISE_TOLERANCE:.0%} over the epoch before counts against "
           f"'falls throughout'; a gain below {MARGINAL_GAIN:.0%} is 'marginal').", "",
           "| claim | evidence | holds |", "|---|---|---|"]
  lines += [f"| {claim} | {evidence} | {verdict} |" for claim, (evidence, verdict) in rows]
  return lines + [""]
