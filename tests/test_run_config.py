"""One source of truth for a run's config: `run_config.saved_config` (config.json over the task's
defaults, only the read sections from the command) and `tasks.run`, the dispatcher on
`config.task`, checked on the shipped records and through the front door."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from rvq_jax import errors
from rvq_jax import run_config
from rvq_jax import tasks
from rvq_jax.configs import classifier as classifier_config
from rvq_jax.configs import model5
from rvq_jax.configs import model7
from rvq_jax.configs import realnvp
from rvq_jax.train import validation
from tests.conftest import REPO

RECORDS = sorted(p.parent for p in [*REPO.glob("pretrained/*/config.json"),
                                    *REPO.glob("docs/ablation/*/config.json")])


@pytest.mark.parametrize("folder", RECORDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_record_reads_as_saved_and_validates(folder):
  raw = json.loads((folder / "config.json").read_text())
  config = run_config.saved_config(folder)
  assert config.task == raw["task"] in run_config.TASKS
  validation.validate_config(config, 1)

  def same(saved, got, name):   # every saved field comes back as saved (lists as tuples)
    if isinstance(saved, dict):
      for key, value in saved.items():
        same(value, got[key], f"{name}.{key}")
    else:
      assert json.loads(json.dumps(got)) == saved, name
  same(raw, config.to_dict(), "config")


def test_a_command_config_sets_only_how_to_read():
  """model5's config on model7's record: the model, audio and quantizer stay model7's; the
  command's eval, codec and data location apply; a config of another task is refused."""
  command = model5.get_config()
  command.eval.perceptual_examples = 7
  command.codec.levels = 3
  command.data.data_dir = "/elsewhere/recordings"
  config = run_config.saved_config(REPO / "pretrained" / "model7", command)
  assert config.to_dict() != model5.get_config().to_dict()
  expected = model7.get_config()
  for section in ("audio", "model", "rvq", "loss"):
    for field, value in expected[section].items():
      if field not in ("conv_impl", "compute_dtype", "block_rows"):   # how, not what
        assert config[section][field] == value, f"{section}.{field}"
  assert config.eval.perceptual_examples == 7 and config.codec.levels == 3
  assert config.data.data_dir == "/elsewhere/recordings"
  assert config.data.max_samples == expected.data.max_samples
  with pytest.raises(errors.ConfigError, match="task='prior'.*holds a vqvae run"):
    run_config.saved_config(REPO / "pretrained" / "model7", realnvp.get_config())
  with pytest.raises(errors.MissingError, match="no config.json"):
    run_config.saved_config(REPO / "configs")


def test_a_legacy_classifier_config_is_migrated():
  """A config.json written before configs named their task (the classifier's then carried the
  VQ-VAE's sections and its own loop length) reads as today's classifier config."""
  legacy = json.loads(classifier_config.get_config().to_json_best_effort())
  del legacy["task"]
  legacy["classifier"].update(num_epochs=12, batch_size=48)
  legacy["train"] = {"batch_size": 32, "num_epochs": 100}
  legacy["model"] = {"latent_dim": 128}
  migrated = run_config.migrate(legacy)
  assert migrated["task"] == "classifier" and "model" not in migrated
  assert migrated["train"] == {"batch_size": 48, "num_epochs": 12}
  assert run_config.migrate(migrated) == migrated
  assert run_config.migrate({"prior": {}, "target": {}})["task"] == "prior"
  assert run_config.migrate({"model": {}})["task"] == "vqvae"


def test_a_prior_recorded_before_guidance_reads_as_trained_without_it():
  """docs/ablation/prior_base was written before the digit-in-every-coupling and guidance fields
  existed; today's defaults turn them on (the shipped recipe), the record must still read off."""
  folder = REPO / "docs" / "ablation" / "prior_base"
  saved = json.loads((folder / "config.json").read_text())
  assert "label_dropout" not in saved["prior"] and "guidance" not in saved["sample"]
  config = run_config.saved_config(folder)
  assert (config.prior.label_conditioning, config.prior.label_dropout) == (False, 0.0)
  assert (config.sample.guidance, tuple(config.sample.guidances)) == (0.0, (0.0,))
  current = json.loads((REPO / "pretrained" / "prior" / "config.json").read_text())
  assert run_config.migrate(current) == current


def test_every_config_names_a_task_and_modes_dispatch_on_it():
  for name in ("default", "quick", "model1", "model2", "model3", "model4", "model5", "model6",
               "model7", "realnvp", "classifier"):
    module = __import__(f"rvq_jax.configs.{name}", fromlist=["get_config"])
    config = module.get_config()
    assert config.task in tasks.TASKS, name
    validation.validate_config(config, 1)
  classifier = classifier_config.get_config()
  assert set(classifier) == {"task", "seed", "data", "audio", "classifier", "train", "parallel",
                             "eval"}
  with pytest.raises(errors.ConfigError, match="--mode=sample does not apply to a vqvae"):
    tasks.run(None, str(REPO / "pretrained" / "model7"), "sample")
  with pytest.raises(errors.ConfigError, match="--mode=trian is unknown"):
    tasks.run(model5.get_config(), "unused", "trian")
  with pytest.raises(errors.ConfigError, match="--mode=train needs --config"):
    tasks.run(None, "unused", "train")


def test_the_front_door_reads_a_shipped_model_without_a_config(tmp_path):
  """`--mode=reconstruct --workdir=pretrained/model7` with no --config: the model is the one saved
  there; the output has the input's length, the folder is left as it was."""
  folder = REPO / "pretrained" / "model7"
  before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
  rng = np.random.default_rng(0)
  t = np.arange(5000) / 8000
  sf.write(tmp_path / "in.wav", 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.normal(size=5000),
           8000, subtype="PCM_16")
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  out = subprocess.run([sys.executable, "-m", "rvq_jax.main", f"--workdir={folder}",
                        "--mode=reconstruct", f"--input={tmp_path / 'in.wav'}",
                        f"--output={tmp_path / 'out.wav'}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert sf.info(tmp_path / "out.wav").frames == 5000
  assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
  bad = subprocess.run([sys.executable, "-m", "rvq_jax.main", f"--workdir={folder}",
                        "--mode=sample", "--output=x"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith(
      "error: --mode=sample does not apply to a vqvae config")
  assert pathlib.Path(REPO / "x").exists() is False


def test_each_kept_ablation_record_is_its_rows_config():
  """docs/ablation/<row>: the config an ablation row's config file builds changes the base in
  exactly the fields the kept record's saved config does (the page's 'change' column)."""
  from rvq_jax.configs import ablation  # pylint: disable=g-import-not-at-top
  from rvq_jax.configs import prior_ablation  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import page  # pylint: disable=g-import-not-at-top
  checked = 0
  for module in (ablation, prior_ablation):
    base = module.base_config()
    for row in module.ROWS:
      folder = REPO / "docs" / "ablation" / f"{module.WORKDIR_PREFIX}{row}"
      if folder.exists():
        assert page.changed_fields(folder, base) == page.changed_fields(
            module.get_config(row), base), row
        checked += 1
  assert checked >= 15
  assert page.changed_fields(ablation.get_config("magphase"), ablation.base_config()) == \
      "(none: the base)"
  assert page.changed_fields(prior_ablation.get_config("wide"), prior_ablation.base_config()) == \
      "prior.hidden=64"


def test_a_read_mode_writes_a_shipped_folder_only_when_told(tmp_path):
  shipped = tmp_path / "pretrained"
  shipped.mkdir()
  (shipped / "weights.msgpack").write_bytes(b"")
  with pytest.raises(errors.ConfigError, match="--output="):
    run_config.record_folder(shipped, None)
  assert run_config.record_folder(shipped, str(shipped)) == shipped       # on purpose
  assert run_config.record_folder(shipped, str(tmp_path / "o")) == tmp_path / "o"
  run = tmp_path / "run"
  (run / "checkpoints").mkdir(parents=True)
  assert run_config.record_folder(run, None) == run


def test_shipped_defaults_are_found_from_any_working_directory(tmp_path, monkeypatch):
  """'pretrained/classifier' (eval.classifier_workdir's default) and a prior's 'pretrained/model6'
  name folders of the checkout: a command run elsewhere finds them there, and a folder of that
  name in the working directory still comes first."""
  from rvq_jax.train import classifier as classifier_train  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import prior_targets  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(tmp_path)
  assert run_config.project_path("pretrained/classifier") == REPO / "pretrained" / "classifier"
  classifier_train.check_trained("pretrained/classifier")          # found, no error
  prior = run_config.saved_config(REPO / "pretrained" / "prior")
  assert prior.vqvae_workdir == "pretrained/model6"
  run = prior_targets.load_vqvae(prior, with_data=False)           # its VQ-VAE, by the same rule
  assert run.config.rvq.levels == 8
  assert run_config.project_path("nowhere/at_all") == pathlib.Path("nowhere/at_all")
  (tmp_path / "pretrained" / "classifier").mkdir(parents=True)     # a local folder of that name
  assert run_config.project_path("pretrained/classifier") == pathlib.Path("pretrained/classifier")
  with pytest.raises(errors.MissingError, match="No trained classifier in pretrained/classifier"):
    classifier_train.check_trained("pretrained/classifier")
