"""Nothing lost, nothing silent: bad WAVs, damaged caches and checkpoints, torn logs, locked and
mismatched workdirs, one-line errors (one test per case of the reliability issue)."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest
import soundfile as sf

from rvq_jax import audio
from rvq_jax import data
from rvq_jax import errors
from rvq_jax.train import checkpoints
from rvq_jax.train import steps
from rvq_jax.train import vqvae as vqvae_train
from rvq_jax.train import writer
from tests.conftest import REPO
from tests.test_data import SMALL
from tests.test_data import _config
from tests.test_data import _small_folder
from tests.test_train import tiny_config


def _load(default_config, folder, cache):
  with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    dataset = data.load_dataset(_config(default_config, folder, cache))
  return dataset, "\n".join(str(w.message) for w in record
                            if issubclass(w.category, data.BadRecordingWarning))


# ------------------------------------------------------------------ data (items 1, 4, 9, 11)
@pytest.mark.parametrize("split_index", [0, 20])   # a test-split file and a training-split file
def test_non_finite_samples_are_skipped_by_name(fsdd_recordings, default_config, tmp_path,
                                                split_index):
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", SMALL)
  good, _ = sf.read(folder / "0_george_20.wav", dtype="float32")
  bad = good.copy()
  bad[100], bad[200] = np.nan, np.inf
  sf.write(folder / f"5_george_{split_index}.wav", bad, 8000, subtype="FLOAT")
  dataset, messages = _load(default_config, folder, tmp_path / "cache")
  assert f"5_george_{split_index}.wav" in messages and "non-finite" in messages
  assert sum(len(dataset[s]) for s in data.SPLITS) == len(SMALL)
  for split in data.SPLITS:
    assert np.isfinite(dataset[split].waveforms).all()


def test_damaged_cache_is_rebuilt_and_transient_skips_are_not_cached(
    fsdd_recordings, default_config, tmp_path, monkeypatch):
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", SMALL)
  cache = tmp_path / "cache"
  data.load_dataset(_config(default_config, folder, cache))
  (cache_file,) = (cache / "prepared").glob("*.npz")
  cache_file.write_bytes(cache_file.read_bytes()[:-200])      # a truncated zip: BadZipFile
  rebuilt, _ = _load(default_config, folder, cache)
  assert not rebuilt.from_cache and len(rebuilt["train"]) > 0

  # Permission denied on one file (simulated: the tests may run as root): skipped, not cached.
  denied_file = folder / "9_jackson_30.wav"
  real_open = pathlib.Path.open

  def deny(self, *args, **kwargs):
    if self.name == denied_file.name:
      raise PermissionError(13, "Permission denied", str(self))
    return real_open(self, *args, **kwargs)

  cache2 = tmp_path / "cache2"
  monkeypatch.setattr(pathlib.Path, "open", deny)
  denied, messages = _load(default_config, folder, cache2)
  assert "9_jackson_30.wav" in messages and "permission denied" in messages
  assert "9_jackson_30" not in denied["train"].names
  assert not list((cache2 / "prepared").glob("*.npz"))          # nothing cached
  monkeypatch.setattr(pathlib.Path, "open", real_open)           # fixed: read again
  fixed, messages = _load(default_config, folder, cache2)
  assert "9_jackson_30" in fixed["train"].names and not fixed.skipped

  # A dangling symbolic link is a bad file, named, not a crash.
  (folder / "1_george_33.wav").symlink_to(tmp_path / "gone.wav")
  linked, messages = _load(default_config, folder, cache2)
  assert "1_george_33.wav" in messages and "dangling" in messages
  assert sum(len(linked[s]) for s in data.SPLITS) == len(SMALL)


def test_bad_files_get_the_right_reason_and_an_all_bad_folder_names_them(
    fsdd_recordings, default_config, tmp_path):
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", SMALL)
  (folder / "1_george_40.wav").write_bytes(b"")
  good, _ = sf.read(folder / "0_george_20.wav", dtype="int16")
  sf.write(folder / "2_george_41.wav", np.tile(good, 120)[:60 * 8000], 8000, subtype="PCM_16")
  _, messages = _load(default_config, folder, tmp_path / "cache")
  assert any("1_george_40.wav" in m and "empty (0 bytes)" in m for m in messages.splitlines())
  assert any("2_george_41 (60.00 s)" in m and "data.max_samples=8192" in m
             for m in messages.splitlines()), messages

  only_bad = tmp_path / "bad"
  only_bad.mkdir()
  (only_bad / "0_george_7.wav").write_bytes(b"not a wav at all")
  (only_bad / "1_theo_8.wav").write_bytes(b"")
  with pytest.raises(errors.DataError) as info:
    _load(default_config, only_bad, tmp_path / "cache")
  message = str(info.value)
  assert "0_george_7.wav: not a WAV file" in message and "1_theo_8.wav: empty" in message
  assert "val_first_index" not in message


def test_fsdd_dir_pointing_at_a_file_says_so(default_config, tmp_path, monkeypatch):
  (tmp_path / "file.wav").write_bytes(b"x")
  monkeypatch.setenv("FSDD_DIR", str(tmp_path / "file.wav"))
  config = default_config.data
  config.cache_dir = str(tmp_path / "cache")
  with pytest.raises(errors.MissingError, match="is a file, not a folder"):
    data.find_recordings(config)


def test_unknown_speaker_is_skipped_and_indices_stay_stable(fsdd_recordings, default_config,
                                                            tmp_path):
  folder = _small_folder(fsdd_recordings, tmp_path / "rec", SMALL)
  before, _ = _load(default_config, folder, tmp_path / "cache")
  (folder / "3_mallory_0.wav").write_bytes((folder / "0_george_20.wav").read_bytes())
  after, messages = _load(default_config, folder, tmp_path / "cache")
  assert "3_mallory_0.wav" in messages and "data.speakers" in messages
  assert after.speaker_names == before.speaker_names == data.FSDD_SPEAKERS
  np.testing.assert_array_equal(after["train"].speakers, before["train"].speakers)
  assert after["train"].speakers[after["train"].names.index("9_jackson_30")] == 1  # jackson
  # An explicit table admits the speaker, appended: the six keep their indices.
  config = _config(default_config, folder, tmp_path / "cache")
  config.speakers = data.FSDD_SPEAKERS + ("mallory",)
  extended = data.load_dataset(config)
  assert extended["test"].speakers[extended["test"].names.index("3_mallory_0")] == 6
  np.testing.assert_array_equal(
      extended["train"].speakers, before["train"].speakers)


# ------------------------------------------------------------------ workdirs (items 2, 3, 5, 6, 7)
def _trained_config(fsdd_recordings, cache):
  config = tiny_config(fsdd_recordings, cache)
  config.train.num_steps = 4
  config.train.checkpoint_every_steps = 2
  config.train.keep_checkpoints = 3
  return config


@pytest.fixture(scope="module")
def trained_once(fsdd_recordings, tmp_path_factory):
  """A tiny run trained to step 4 with checkpoints at 2 and 4 (trained once per module)."""
  root = tmp_path_factory.mktemp("trained")
  vqvae_train.train(_trained_config(fsdd_recordings, root / "cache"), str(root / "run"))
  return root / "run"


@pytest.fixture
def trained(trained_once, fsdd_recordings, tmp_path):
  """(config, workdir): a private copy of `trained_once` for a test to damage or resume."""
  workdir = tmp_path / "run"
  shutil.copytree(trained_once, workdir)
  return _trained_config(fsdd_recordings, tmp_path / "cache"), workdir


def test_incompatible_resume_fails_before_writing_anything(trained):
  config, workdir = trained
  saved_config = (workdir / "config.json").read_text()
  saved_info = (workdir / "run_info.json").read_text()
  config.model.latent_dim = 16
  with pytest.raises(errors.ConfigError,
                     match=r"model\.latent_dim=16 differs from the saved run's 8"):
    vqvae_train.train(config, str(workdir))
  assert (workdir / "config.json").read_text() == saved_config
  assert (workdir / "run_info.json").read_text() == saved_info
  assert not (workdir / checkpoints.LOCK_FILE).exists()
  # A field that may change on resume is allowed, and recorded.
  config.model.latent_dim = 8
  config.train.num_steps = 6
  state, _, _ = vqvae_train.train(config, str(workdir))
  assert int(state.step) == 6
  info = json.loads((workdir / "run_info.json").read_text())
  changes = info[-1]["config_changes"]
  assert changes["train.num_steps"] == [4, 6]
  assert set(changes) == {"train.num_steps", "data.cache_dir"}   # the copy has its own cache
  assert json.loads((workdir / "config.json").read_text())["train"]["num_steps"] == 6


def test_damaged_latest_checkpoint_falls_back_and_is_moved_aside(trained):
  config, workdir = trained
  files = sorted(p for p in (workdir / "checkpoints" / "4").rglob("*") if p.is_file()
                 and p.stat().st_size > 100 and "ocdbt" in str(p))
  files[0].write_bytes(files[0].read_bytes()[: files[0].stat().st_size // 2])   # truncated
  config.train.num_steps = 5
  state, _, _ = vqvae_train.train(config, str(workdir))
  assert int(state.step) == 5                     # resumed from 2, then 3 more steps
  moved = list((workdir / checkpoints.DAMAGED_DIR).iterdir())
  assert len(moved) == 1 and moved[0].name.startswith("4-")
  info = json.loads((workdir / "run_info.json").read_text())
  assert info[-1]["start_step"] == 2
  assert info[-1]["damaged_checkpoints"][0].startswith("4: moved to")


def test_torn_metrics_line_and_torn_run_info_do_not_block_a_resume(trained):
  config, workdir = trained
  with open(workdir / "metrics.jsonl", "a") as f:
    f.write('{"step": 5, "split": "tra')          # killed mid-write
  (workdir / "run_info.json").write_text('[{"started": "2026')
  records = writer.read_metrics(workdir)
  assert [r["step"] for r in records] == [4, 4]
  config.train.num_steps = 6
  state, _, _ = vqvae_train.train(config, str(workdir))
  assert int(state.step) == 6
  assert [(r["step"], r["split"]) for r in writer.read_metrics(workdir)] == [
      (4, "train"), (4, "validation"), (6, "train"), (6, "validation")]
  assert len(json.loads((workdir / "run_info.json").read_text())) == 1
  assert list(workdir.glob("run_info.damaged-*.json"))


def test_a_second_run_on_a_workdir_is_refused_and_stale_locks_are_taken_over(trained):
  config, workdir = trained
  lock = workdir / checkpoints.LOCK_FILE
  lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "started": "2026-12-01T00:00:00+00:00"}))
  config.train.num_steps = 6
  with pytest.raises(errors.WorkdirError, match=rf"in use by process {os.getpid()} on host"):
    vqvae_train.train(config, str(workdir))
  assert lock.exists()          # the other run's lock is left alone
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
  state, _, _ = vqvae_train.train(config, str(workdir))
  assert int(state.step) == 6 and not lock.exists()


def test_resumed_epoch_means_equal_an_uninterrupted_run(fsdd_recordings, tmp_path):
  config = tiny_config(fsdd_recordings, tmp_path / "cache")
  config.train.batch_size = 256                   # 9 steps per epoch
  config.train.checkpoint_every_steps = 3
  config.train.num_steps = 11
  vqvae_train.train(config, str(tmp_path / "straight"))
  config.train.num_steps = 6                      # stop mid-epoch 1, then resume to 11
  vqvae_train.train(config, str(tmp_path / "resumed"))
  config.train.num_steps = 11
  vqvae_train.train(config, str(tmp_path / "resumed"))
  straight = {(r["step"], r["split"]): r for r in writer.read_metrics(tmp_path / "straight")}
  resumed = {(r["step"], r["split"]): r for r in writer.read_metrics(tmp_path / "resumed")}
  for key in ((9, "train"), (9, "validation"), (11, "train")):
    for name, value in straight[key].items():
      if name in ("split", "step", "epoch"):
        assert resumed[key][name] == value
      elif name not in ("epoch_seconds", "examples_per_second"):
        np.testing.assert_allclose(resumed[key][name], value, rtol=1e-6, err_msg=f"{key} {name}")


def test_dropped_levels_stay_unchanged_through_the_train_step(fsdd_dataset):
  """The step itself (quantizer dropout + dead-code restarts): after a step that used m levels,
  the levels >= m are bitwise what they were."""
  config = tiny_config()
  config.rvq.dropout = True
  config.rvq.dead_code_steps = 2
  specs = audio.prepare_spectrograms(fsdd_dataset["train"].waveforms[:64], config.audio)
  state = steps.create_train_state(config, jax.random.key_data(jax.random.key(0)), specs[:16])
  step = jax.jit(steps.make_vqvae_train_step(config))
  seen = set()
  for i in range(12):
    before = jax.device_get(state.codebook)
    state, metrics = step(state, specs[(16 * i) % 48:(16 * i) % 48 + 16])
    used = int(metrics["levels_used"])
    seen.add(used)
    after = jax.device_get(state.codebook)
    for field, b, a in zip(before._fields, before, after):
      np.testing.assert_array_equal(a[used:], b[used:], err_msg=f"step {i} {field}")
  assert seen - {config.rvq.levels}, "no step dropped a level"


# ------------------------------------------------------------------ errors and checks (8, 9, 10)
def _main(args, tmp_path, **env):
  env = dict(os.environ, RVQ_JAX_CACHE=str(tmp_path / "cache"), JAX_PLATFORMS="cpu",
             XLA_FLAGS="", **env)
  return subprocess.run([sys.executable, "-m", "rvq_jax.main"] + args, cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def test_user_errors_are_one_readable_line(fsdd_recordings, tmp_path):
  common = ["--config=configs/quick.py", f"--workdir={tmp_path / 'w'}"]
  bad = _main(common + ["--config.optim.learning_rate=-1"], tmp_path,
              FSDD_DIR=str(fsdd_recordings))
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines()[-1] == (
      "error: Invalid config: optim.learning_rate=-1.0 must be positive.")
  assert "Traceback" not in bad.stderr

  typo = _main(common + ["--config.rvq.level=3"], tmp_path)
  assert typo.returncode == 1 and "Traceback" not in typo.stderr
  assert typo.stderr.strip() == ('error: a --config override does not apply: no field \'level\' '
                                 'Did you mean "levels" instead of "level"?')

  missing = _main(["--config=configs/no_such_config.py", f"--workdir={tmp_path / 'w'}"], tmp_path)
  assert missing.returncode == 1 and "Traceback" not in missing.stderr
  assert missing.stderr.strip().splitlines()[-1] == (
      "error: --config could not be loaded: [Errno 2] No such file or directory: "
      "'configs/no_such_config.py' (give a configs/*.py file, e.g. --config=configs/model5.py).")

  offline = _main(common + ["--config.data.download_url=http://127.0.0.1:9/fsdd.tar.gz"],
                  tmp_path, FSDD_DIR="")
  assert offline.returncode == 1 and "Traceback" not in offline.stderr
  last = offline.stderr.strip().splitlines()[-1]
  assert last.startswith("error: Could not download FSDD") and "data_dir" in last
  assert len([l for l in offline.stderr.splitlines() if l.startswith("error")]) == 1

  verbose = _main(common + ["--config.optim.learning_rate=-1"], tmp_path,
                  FSDD_DIR=str(fsdd_recordings), RVQ_JAX_TRACEBACK="1")
  assert verbose.returncode != 0 and "Traceback" in verbose.stderr
  assert not (tmp_path / "w" / "checkpoints").exists() and not (tmp_path / "w" / "config.json").exists()


@pytest.mark.parametrize("field, value", [
    ("optim.learning_rate", 0.0), ("optim.b1", 1.0), ("optim.b2", -0.1), ("loss.beta", -1.0),
    ("rvq.eps", 0.0), ("rvq.statistic_groups", 12), ("train.keep_checkpoints", 0)])
def test_config_checks_name_the_field(field, value):
  from rvq_jax.train import validation  # pylint: disable=g-import-not-at-top
  config = tiny_config()
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(errors.ConfigError, match=field.replace(".", r"\.")):
    validation.validate_config(config, 8)   # 12 statistic groups do not split over 8 devices


def test_prior_and_classifier_fields_are_checked():
  from rvq_jax.configs import classifier  # pylint: disable=g-import-not-at-top
  from rvq_jax.configs import realnvp  # pylint: disable=g-import-not-at-top
  from rvq_jax.train import validation  # pylint: disable=g-import-not-at-top
  config = realnvp.get_config()
  config.optim.learning_rate = -1.0
  with pytest.raises(errors.ConfigError, match=r"optim\.learning_rate"):
    validation.validate_config(config, 1)
  config = classifier.get_config()
  config.classifier.dropout = 1.5
  with pytest.raises(errors.ConfigError, match=r"classifier\.dropout"):
    validation.validate_config(config)
  config = classifier.get_config()
  config.classifier.augment.snr_db = (45.0, 15.0)
  with pytest.raises(errors.ConfigError, match=r"classifier\.augment\.snr_db"):
    validation.validate_config(config)


def test_read_only_modes_create_nothing_and_prior_checks_the_classifier_first(
    trained, fsdd_recordings, tmp_path):
  from rvq_jax import tasks  # pylint: disable=g-import-not-at-top
  from rvq_jax.configs import realnvp  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import prior_report  # pylint: disable=g-import-not-at-top
  from rvq_jax.eval import quality  # pylint: disable=g-import-not-at-top
  config, vqvae_dir = trained
  empty = tmp_path / "empty"
  empty.mkdir()
  config.eval.classifier_workdir = str(tmp_path / "no_classifier")
  with pytest.raises(errors.MissingError, match="holds no trained run"):
    quality.evaluate_vqvae(config, str(empty))
  before = sorted(p.name for p in vqvae_dir.iterdir())
  with pytest.raises(errors.MissingError, match="No trained classifier"):   # before any work
    quality.evaluate_vqvae(config, str(vqvae_dir))
  assert sorted(p.name for p in vqvae_dir.iterdir()) == before
  prior_config = realnvp.get_config()
  prior_config.vqvae_workdir = str(vqvae_dir)
  prior_config.data.data_dir = str(fsdd_recordings)
  prior_config.data.cache_dir = str(tmp_path / "cache")
  prior_config.eval.classifier_workdir = str(tmp_path / "no_classifier")
  with pytest.raises(errors.MissingError, match="No trained classifier"):
    tasks.train_prior(prior_config, str(empty))
  with pytest.raises(errors.MissingError, match="holds no trained run"):
    prior_report.sample(prior_config, str(empty), str(tmp_path / "samples"))
  with pytest.raises(errors.ConfigError, match="--output=<folder>"):
    prior_report.sample(prior_config, str(empty), None)
  assert not list(empty.iterdir()) and not (tmp_path / "samples").exists()
  # With the classifier question out of the way, evaluate on a workdir that was never trained.
  with pytest.raises(errors.MissingError, match="No checkpoint"):
    vqvae_train.restore_state(config, empty)
  assert not list(empty.iterdir())


def test_a_half_trained_vqvae_is_warned_about(tmp_path, caplog):
  from rvq_jax.train import prior_targets  # pylint: disable=g-import-not-at-top
  writer.append_run_info(tmp_path, start_step=0, total_steps=7500)
  with caplog.at_level("WARNING"):
    prior_targets._warn_if_unfinished(tmp_path, 500)   # pylint: disable=protected-access
  assert "half-trained" in caplog.text and "step 500 of 7500" in caplog.text
  caplog.clear()
  with caplog.at_level("WARNING"):
    prior_targets._warn_if_unfinished(tmp_path, 7500)   # pylint: disable=protected-access
  assert "half-trained" not in caplog.text
