"""The layering of docs/ARCHITECTURE.md, enforced: a module imports only from its own layer or the
layers below it (audio, data -> models -> train -> eval -> the front door), wherever the import
statement sits (module level or inside a function)."""

import ast
import pathlib
import subprocess
import sys

from tests.conftest import REPO

PACKAGE = REPO / "rvq_jax"
# Lower number = lower layer. `errors` is the shared vocabulary of every layer; `configs` are data
# (ml_collections files: the documented defaults of every task, importing only data's speaker
# table), so any layer may read them; `run_config` (a run's saved config) serves train and above;
# `files` (atomic writes) serves every layer; `bitstream` is a file format, like data's.
LAYERS = {"errors": 0, "files": 0, "audio": 1, "data": 1, "configs": 1, "bitstream": 1,
          "context_model": 1, "models": 2, "train": 3, "run_config": 3, "eval": 4, "codec": 5, "export": 5, "main": 5,
          "listening": 5, "tasks": 5, "cli": 5, "codec_cli": 5}


def _layer(module: str) -> int:
  """Layer of a dotted module name inside rvq_jax ('rvq_jax.train.steps' -> 3)."""
  parts = module.split(".")
  return LAYERS[parts[1]] if len(parts) > 1 else 0


def _imports(path: pathlib.Path) -> set[str]:
  """The rvq_jax modules (and packages) imported anywhere in the file at `path`."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.startswith("rvq_jax"))
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rvq_jax"):
      # `from rvq_jax import audio` imports the subpackage audio; `from rvq_jax.train import x`
      # imports rvq_jax.train.x: the layer is the first component after rvq_jax either way.
      found.update(f"{node.module}.{a.name}" if node.module == "rvq_jax" else node.module
                   for a in node.names)
  return found


def _module_name(path: pathlib.Path) -> str:
  return ".".join(path.relative_to(REPO).with_suffix("").parts)


def test_every_module_has_a_layer():
  for path in PACKAGE.rglob("*.py"):
    name = _module_name(path)
    if name != "rvq_jax.__init__":
      assert name.split(".")[1] in LAYERS, f"{path}: add its folder to LAYERS and ARCHITECTURE.md"


def test_no_module_imports_from_a_layer_above_it():
  violations = []
  for path in sorted(PACKAGE.rglob("*.py")):
    name = _module_name(path)
    if name == "rvq_jax.__init__":
      continue
    for imported in sorted(_imports(path)):
      if _layer(imported) > _layer(name):
        violations.append(f"{path.relative_to(REPO)} imports {imported}")
  assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_the_layering_check_catches_an_upward_import(tmp_path):
  """The check itself: a data module importing from train is seen (so the test above can fail)."""
  bad = tmp_path / "bad.py"
  bad.write_text("def f():\n  from rvq_jax.train import steps\n  return steps\n")
  assert _imports(bad) == {"rvq_jax.train"}
  assert _layer("rvq_jax.train") > _layer("rvq_jax.data.fsdd")


def test_configs_import_after_install_from_any_directory(tmp_path):
  """Configs ship inside the package: importable away from the repository root."""
  out = subprocess.run(
      [sys.executable, "-c", "from rvq_jax.configs import model6; c = model6.get_config(); "
       "print(c.rvq.levels, c.audio.representation)"],
      cwd=tmp_path, capture_output=True, text=True, check=True)
  assert out.stdout.split() == ["8", "logmag_phase"]
  assert (REPO / "configs" / "model5.py").resolve() == PACKAGE / "configs" / "model5.py"
