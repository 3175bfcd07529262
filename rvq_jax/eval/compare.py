"""Figure 2 of the original report: train or collect model1..model5, draw model1 against model5.

COMMAND (trains each model into runs/modelN, resuming where a run stopped, then draws):
  python -m rvq_jax.eval.compare --root=runs --train
Collect finished or partial runs only (no training):
  python -m rvq_jax.eval.compare --root=runs,pretrained
Writes <first root>/figure2_loss_curves.png (train solid, validation dashed: total, reconstruction,
commitment) and <root>/summary.md (final metrics of every run found).
"""

from __future__ import annotations

import importlib
import pathlib

from absl import app
from absl import flags
from absl import logging

from rvq_jax import errors
from rvq_jax import files
from rvq_jax.eval import figures
from rvq_jax.eval import render
from rvq_jax.train import writer


def train_all(root: pathlib.Path, models, num_epochs=None) -> None:
  """Trains each `configs/<name>.py` into `<root>/<name>`, resuming where it stopped."""
  from rvq_jax.eval import report  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import validation  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import vqvae as vqvae_train  # pylint: disable=g-import-not-at-top
  for name in models:
    config = importlib.import_module(f"rvq_jax.configs.{name}").get_config()
    if num_epochs is not None:
      config.train.num_epochs = num_epochs
    validation.validate_config(config, 1)
    logging.info("Training %s into %s", name, root / name)
    state, dataset, specs = vqvae_train.train(config, str(root / name))
    report.write_report(config, str(root / name), state, dataset, specs)


def draw_pair(roots, pair, path) -> pathlib.Path:
  """Figure 2: the loss curves of the two runs in `pair`, found under `roots`, saved at `path`."""
  runs = {name: writer.read_metrics(find_workdir(roots, name, "metrics.jsonl")) for name in pair}
  missing = [name for name, records in runs.items() if not records]
  if missing:
    raise errors.MissingError(f"No metrics.jsonl for {missing} under {', '.join(map(str, roots))}; "
                              "train them first (add --train).")
  return figures.save(figures.loss_curves_figure(runs), path)


def compare(root, models, pair) -> tuple[pathlib.Path, pathlib.Path]:
  """Draws the pair's loss curves and writes the summary table of `models` into the first root.

  root: a folder of workdirs, or a list of them searched in order (a run under runs/, else its
    shipped record under pretrained/). Returns the figure's and the table's paths.
  """
  roots = [pathlib.Path(r) for r in (root if isinstance(root, (list, tuple)) else [root])]
  figure = draw_pair(roots, pair, roots[0] / "figure2_loss_curves.png")
  table = roots[0] / "summary.md"
  files.write_text(table, render.summary_table(
      {m: render.read_run(find_workdir(roots, m, "metrics.jsonl")) for m in models}))
  return figure, table


def find_workdir(roots, name: str, marker: str) -> pathlib.Path:
  """<root>/<name> of the first root where it holds `marker`; else under the first root."""
  roots = [pathlib.Path(r) for r in roots]
  return next((r / name for r in roots if (r / name / marker).exists()), roots[0] / name)


FLAGS = flags.FLAGS


def main(argv):
  del argv
  roots = [pathlib.Path(r) for r in FLAGS.root]
  if FLAGS.train:
    train_all(roots[0], FLAGS.models, FLAGS.num_epochs)
  figure, table = compare(roots, FLAGS.models, FLAGS.pair)
  logging.info("Wrote %s and %s", figure, table)
  print(table.read_text())


def _define_flags():
  """Command-line flags, defined only when run as a script (importing stays inert)."""
  flags.DEFINE_list("root", ["runs"], "Folders holding one workdir per model, searched in order "
                    "(e.g. runs,pretrained); --train trains into the first.")
  flags.DEFINE_list("models", [f"model{i}" for i in range(1, 6)], "Configs to run.")
  flags.DEFINE_list("pair", ["model1", "model5"], "The two runs drawn in the figure.")
  flags.DEFINE_bool("train", False, "Train (or resume) every run before drawing.")
  flags.DEFINE_integer("num_epochs", None, "Override train.num_epochs of every config.")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
