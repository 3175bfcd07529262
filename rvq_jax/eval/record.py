"""eval.json of a VQ-VAE run: one schema, written by `--mode=train` and `--mode=evaluate` alike,
and the one reader (`load`), which upgrades files written before the schema had a version.

Schema 2 (L quantizer levels; rows are `quality.waveform_metrics` dicts plus 'levels',
'nominal_bits_per_second', 'spectrogram_mse' and 'classifier_accuracy'):

    schema: 2, step, split: "test", examples
    test.loss.{total, reconstruction, commitment, commitment_per_level [L]}   training objective
    test.spectrogram_mse                                  decoder mean vs input, scaled spectrograms
    codebook.{perplexity [L], usage [L], dead_codes [L]}  over all test latent positions
    codebook.{nominal_bits_per_second, entropy_bits_per_second}
    codebook.speech.{perplexity [L], usage [L], position_fraction}        --mode=evaluate only
    quality.reconstruction                                the full-rate row   --mode=evaluate only
    quality.original_classifier_accuracy                  the digit classifier on the originals
    quality.baselines.{name: row}                         degraded originals (no model)
    rate_distortion [row for n = 1..L decoded levels]

Before the schema (no 'schema' key) everything sat at the top level and `reconstruction` was a
loss after training but the full-rate row after evaluation; `upgrade` maps those files, and
`python -m rvq_jax.eval.record <eval.json>...` rewrites them in place.
"""

from __future__ import annotations

import json
import pathlib

from absl import app

from rvq_jax import files

SCHEMA = 2


def from_test_metrics(step: int, examples: int, metrics: dict, bit_rates: dict) -> dict:
  """The training-time record from `vqvae_train.evaluate` metrics (counts already removed;
  arrays or floats) and `report.bits_per_second`."""
  value = lambda v: v.tolist() if hasattr(v, "tolist") else v
  m = {k: value(v) for k, v in metrics.items()}
  return {"schema": SCHEMA, "step": int(step), "split": "test", "examples": int(examples),
          "test": {"loss": {"total": m["loss"], "reconstruction": m["reconstruction"],
                            "commitment": m["commitment"],
                            "commitment_per_level": m["commitment_per_level"]},
                   "spectrogram_mse": m["spectrogram_mse"]},
          "codebook": {"perplexity": m["codebook_perplexity"], "usage": m["codebook_usage"],
                       "dead_codes": m["codebook_dead_codes"], **bit_rates}}


def upgrade(result: dict) -> dict:
  """A schema-2 record from any eval.json contents (returned unchanged when already schema 2)."""
  if result.get("schema") == SCHEMA:
    return result
  if "schema" in result:
    raise ValueError(f"eval.json schema {result['schema']!r} is newer than this code's "
                     f"({SCHEMA}); update rvq_jax.")
  evaluated = isinstance(result.get("reconstruction"), dict)
  loss = {"total": result["loss"],
          # Evaluation overwrote the reconstruction loss with the quality row; it is gone.
          "reconstruction": result.get("reconstruction_loss") if evaluated else
          result.get("reconstruction"),
          "commitment": result["commitment"],
          "commitment_per_level": result["commitment_per_level"]}
  out = {"schema": SCHEMA, "step": result["step"], "split": result.get("split", "test"),
         "examples": result["examples"],
         "test": {"loss": loss, "spectrogram_mse": result["spectrogram_mse"]},
         "codebook": {"perplexity": result["codebook_perplexity"],
                      "usage": result["codebook_usage"],
                      "dead_codes": result["codebook_dead_codes"],
                      "nominal_bits_per_second": result["nominal_bits_per_second"],
                      "entropy_bits_per_second": result["entropy_bits_per_second"]}}
  if "speech_codebook_perplexity" in result:
    out["codebook"]["speech"] = {"perplexity": result["speech_codebook_perplexity"],
                                 "usage": result["speech_codebook_usage"],
                                 "position_fraction": result["speech_position_fraction"]}
  if evaluated:
    out["quality"] = {"reconstruction": result["reconstruction"],
                      "original_classifier_accuracy": result["classifier_accuracy_original"],
                      "baselines": result["baselines"]}
    out["rate_distortion"] = result["rate_distortion"]
  return out


def load(path) -> dict | None:
  """The schema-2 record in `path` (an eval.json, or a workdir holding one); None if absent."""
  path = pathlib.Path(path)
  path = path / "eval.json" if path.is_dir() else path
  if not path.exists():
    return None
  return upgrade(json.loads(path.read_text()))


def write(path, result: dict) -> pathlib.Path:
  path = pathlib.Path(path)
  files.write_text(path, json.dumps(upgrade(result), indent=2) + "\n")
  return path


def main(argv):
  """Rewrites each eval.json named on the command line in schema 2."""
  for name in argv[1:]:
    print(write(name, load(name)))


if __name__ == "__main__":
  app.run(main)
