"""Regenerates docs/RESULTS.md from run workdirs: one command, numbers only from real runs.

COMMAND: python -m rvq_jax.eval.results --root=runs,pretrained,docs/ablation --out=docs/RESULTS.md
`--root` is a comma-separated list of folders; each workdir is read from the first that holds it
(a run under runs/, else its shipped record under pretrained/, which --mode=export writes).
Reads <root>/classifier/classifier_eval.json and, for each <root>/modelN: config.json,
metrics.jsonl, run_info.json and eval.json (complete after --mode=evaluate); copies the figures it
shows into <out folder>/figures/. Runs that are missing are listed as not run.
`--sections=model1,claims` regenerates only those sections of the existing page and keeps the rest
(hand-written paragraphs included); see `page_sections` for the names.
"""

from __future__ import annotations

import pathlib

from absl import app
from absl import flags

from rvq_jax import files
from rvq_jax.eval import claims
from rvq_jax.eval import codec_sections
from rvq_jax.eval import page
from rvq_jax.eval import prior_sections
from rvq_jax.eval import vqvae_sections


def page_sections(roots: list[pathlib.Path], out_dir: pathlib.Path) -> dict:
  """The page in order, as {section name: () -> its lines}; rendering one writes only its figures.

  Names: classifier, classifier_mel (the second scorer), models (Figure 2 and the summary table), model1 .. model7, targets, listening,
  codec (rate-distortion beside other codecs), claims, ablation, prior (with its subsections). Each renderer's first line is the section's heading.
  """
  vq = vqvae_sections
  sections = {"classifier": lambda: vq.classifier_section(roots),
              "classifier_mel": lambda: vq.classifier_section(roots, "classifier_mel"),
              "models": lambda: vq.models_intro(roots, out_dir)}
  for name in vq.MODELS:
    sections[name] = (lambda name=name: vq.run_section(page.find(roots, name, "metrics.jsonl"),
                                                       out_dir, name))
  sections["targets"] = lambda: vq.codec_targets_section(roots)
  sections["listening"] = lambda: vq.listening_section(out_dir)
  sections["codec"] = lambda: codec_sections.codec_section(out_dir)
  sections["claims"] = lambda: claims.study_claims_section(roots)
  sections["ablation"] = lambda: vq.ablation_section(roots)
  sections["prior"] = lambda: prior_sections.prior_section(roots, out_dir)
  return sections


def _heading(line: str) -> tuple[int, str] | None:
  """(level, key) of a markdown heading line; the key is its text before any ':' (so a renamed
  subtitle still matches), None for other lines."""
  if not line.startswith("#"):
    return None
  level = len(line) - len(line.lstrip("#"))
  return level, line[level:].split(":")[0].strip()


def splice(page: str, section: list[str], path="the page") -> str:
  """`page` with the section that starts with `section[0]`'s heading replaced by `section`.

  The replaced part runs to the next heading of the same or a higher level when `section` has
  subsections of its own, else to the next heading of any level (so the models introduction stops
  at "### model1"); everything else on the page, hand-written text included, is kept.
  """
  lines = page.split("\n")
  level, key = _heading(section[0])
  starts = [i for i, line in enumerate(lines) if _heading(line) == (level, key)]
  if len(starts) != 1:
    raise ValueError(f"{path}: {len(starts)} sections headed {section[0]!r} (need exactly one); "
                     "regenerate the whole page instead (no --sections)")
  nested = any(_heading(line) for line in section[1:])
  end = next((i for i in range(starts[0] + 1, len(lines)) if _heading(lines[i]) and
              (not nested or _heading(lines[i])[0] <= level)), len(lines))
  tail = lines[end:]
  return "\n".join(lines[:starts[0]] + section + ([""] if tail and section[-1] else []) + tail)


def write_results(root, out, sections=None) -> pathlib.Path:
  """root: a folder of workdirs, or a comma-separated list of them (searched in order).

  sections: None writes the whole page; else names from `page_sections` regenerated into the
  existing page at `out` (the rest of it, hand-written text included, is kept).
  """
  roots = [pathlib.Path(r) for r in str(root).split(",") if r]
  out = pathlib.Path(out)
  (out.parent / "figures").mkdir(parents=True, exist_ok=True)
  renderers = page_sections(roots, out.parent)
  if sections:
    unknown = [name for name in sections if name not in renderers]
    if unknown:
      raise ValueError(f"--sections: unknown {', '.join(unknown)}; choose from "
                       f"{', '.join(renderers)}")
    if not out.exists():
      raise FileNotFoundError(f"{out}: no page to regenerate sections of; drop --sections to "
                              "write the whole page")
    page = out.read_text()
    for name in sections:
      page = splice(page, renderers[name](), out)
    files.write_text(out, page)
    return out
  lines = ["# Results", "",
           f"Generated by `python -m rvq_jax.eval.results --root={root} --out={out}` from the run "
           "workdirs; every number comes from a real run of the command shown with it.", ""]
  for render_section in renderers.values():
    lines += render_section()
  files.write_text(out, "\n".join(lines))
  return out


FLAGS = flags.FLAGS


def main(argv):
  del argv
  print(write_results(FLAGS.root, FLAGS.out, FLAGS.sections))


def _define_flags():
  """Command-line flags, defined only when run as a script (importing stays inert)."""
  flags.DEFINE_string("root", "runs,pretrained,docs/ablation",
                      "Folders of workdirs (modelN, classifier), comma-separated, searched in order.")
  flags.DEFINE_string("out", "docs/RESULTS.md", "Page to write.")
  flags.DEFINE_list("sections", None, "Regenerate only these sections of the existing page "
                    "(classifier, classifier_mel, models, model1..model7, targets, listening, codec, claims, ablation, "
                    "prior), keeping the rest of it; default: the whole page.")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
