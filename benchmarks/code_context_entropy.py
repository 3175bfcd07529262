"""How many bits a context-modelled bitstream could save (issue 32): held-out cross-entropy of a
model's RVQ codes under simple context models fitted on the training split.

COMMAND: python benchmarks/code_context_entropy.py --workdir=pretrained/model7

Codes are those the codec writes: each recording's own latent frames (the padding after it left
out). For each level, counts of (context, code) on the training split, smoothed by +0.5, give a
coding distribution whose cross-entropy on the validation split is an honest bits-per-code figure
(a plug-in entropy on the training codes would flatter the large contexts). Contexts:
  unigram          none: what `bitstream.EntropyModel` codes with today
  row              the code's latent row (frequency band)
  previous level   the code of the level above at the same position (level 0: none)
  left neighbour   the same level's code one latent frame earlier in the same row
and then the bitstream's own model (format 2, `bitstream.fit_entropy_model`: level 0 given its
left neighbour, every other level given the level above, the context values fitted into G groups
a level; +1 smoothing as it codes) for each G of --groups (G = 1: format 1), and format 3's
(level 0 also given the code a row below in the same frame, that context grouped alike).
"""

import json
import sys

from absl import app
from absl import flags
from ml_collections import config_dict
import numpy as np

sys.path.insert(0, ".")
# pylint: disable=g-import-not-at-top
from rvq_jax import bitstream  # noqa: E402
from rvq_jax import codec as codec_lib  # noqa: E402
from rvq_jax import data as data_lib  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", "pretrained/model7", "The RVQ-VAE's weights.")
_GROUPS = flags.DEFINE_list("groups", ["1", "4", "16", "64", "513"],
                            "Context groups a level of the bitstream's model to score.")


def contexts(x: np.ndarray, level: int, kind: str, num_codes: int) -> np.ndarray:
  """Context index of every code of level `level` in x [rows, frames, L] (row-major)."""
  rows, frames, _ = x.shape
  if kind == "unigram" or (kind == "previous level" and level == 0):
    return np.zeros(rows * frames, np.int64)
  if kind == "row":
    return np.repeat(np.arange(rows), frames)
  if kind == "previous level":
    return x[..., level - 1].ravel()
  start = np.full((rows, 1), num_codes)          # "no frame before": its own context
  return np.concatenate([start, x[:, :-1, level]], 1).ravel()


CONTEXTS = {"unigram": lambda k, rows: 1, "row": lambda k, rows: rows,
            "previous level": lambda k, rows: k, "left neighbour": lambda k, rows: k + 1}


def cross_entropy(train, held_out, kind: str, num_codes: int, levels: int) -> list[float]:
  """Bits per code of each level on `held_out` under (context, code) counts of `train`."""
  out = []
  for level in range(levels):
    counts = np.full((CONTEXTS[kind](num_codes, train[0].shape[0]), num_codes), 0.5)
    for x in train:
      np.add.at(counts, (contexts(x, level, kind, num_codes), x[..., level].ravel()), 1)
    log_p = np.log2(counts / counts.sum(1, keepdims=True))
    bits = sum(-log_p[contexts(x, level, kind, num_codes), x[..., level].ravel()].sum()
               for x in held_out)
    out.append(float(bits / sum(x[..., level].size for x in held_out)))
  return out


def grouped_bits(train, held_out, num_codes: int, groups: int) -> list[float]:
  """Bits per code of each level on `held_out` under the bitstream's context model with `groups`
  groups a level, fitted on `train`."""
  model = bitstream.fit_entropy_model(train, num_codes, groups)
  log_p = np.log2(model.probabilities())
  return [float(sum(-log_p[l][model.context_groups(x, l), x[..., l]].sum() for x in held_out)
                / sum(x[..., l].size for x in held_out)) for l in range(model.levels)]


def format3_bits(train, held_out, num_codes: int, groups: int) -> list[float]:
  """As `grouped_bits`, with level 0 coded as format 3 codes it: given the groups of both its
  contexts, the code a frame earlier and the code a row below in the same frame."""
  levels = train[0].shape[-1]
  model = bitstream.fit_entropy_model(train, num_codes, groups,
                                      depths=[[np.full(x.shape[:2], levels) for x in train]])
  log_p0 = np.log2(model.level0_probabilities())
  level0 = sum(-log_p0[model.group_of[0][bitstream.context_values(x, 0, num_codes)],
                       model.below_group_of[bitstream.below_values(x, num_codes)],
                       x[..., 0]].sum() for x in held_out) / sum(x[..., 0].size for x in held_out)
  return [float(level0)] + grouped_bits(train, held_out, num_codes, groups)[1:]


def main(argv):
  del argv
  codec = codec_lib.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}),
                               _WORKDIR.value)
  dataset = data_lib.load_dataset(codec.config.data)
  train, held_out = (codec_lib.split_codes(codec, dataset[s]) for s in ("train", "validation"))
  k, levels = codec.config.rvq.codes, codec.config.rvq.levels
  for kind in CONTEXTS:
    bits = cross_entropy(train, held_out, kind, k, levels)
    print(json.dumps({"workdir": _WORKDIR.value, "context": kind,
                      "bits_per_code_by_level": np.round(bits, 2).tolist(),
                      "mean_bits_per_code": round(float(np.mean(bits)), 3)}), flush=True)
  for groups in map(int, _GROUPS.value):
    bits = grouped_bits(train, held_out, k, groups)
    print(json.dumps({"workdir": _WORKDIR.value, "context": f"bitstream, {groups} groups",
                      "bits_per_code_by_level": np.round(bits, 2).tolist(),
                      "mean_bits_per_code": round(float(np.mean(bits)), 3)}), flush=True)
    if groups > 1:
      bits = format3_bits(train, held_out, k, groups)
      print(json.dumps({"workdir": _WORKDIR.value,
                        "context": f"bitstream format 3 (level 0: frame before and row below), "
                                   f"{groups} groups",
                        "bits_per_code_by_level": np.round(bits, 2).tolist(),
                        "mean_bits_per_code": round(float(np.mean(bits)), 3)}), flush=True)


if __name__ == "__main__":
  app.run(main)
