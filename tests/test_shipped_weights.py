"""Shipped weights refuse to run as garbage: a damaged, incomplete or non-finite weights file, an
edited config.json, a bad data scale, and a prior beside a VQ-VAE it was not trained on are each
a one-line error naming the file (tested on copies of the shipped folders)."""

import json
import shutil

import flax.serialization
from ml_collections import config_dict
import numpy as np
import pytest

from rvq_jax import errors
from rvq_jax import files
from rvq_jax import run_config
from rvq_jax.train import checkpoints
from rvq_jax.train import prior_targets
from rvq_jax.train import vqvae as vqvae_train
from tests.conftest import REPO


def _copy(name, tmp_path):
  """A copy of pretrained/<name> without its figures and audio."""
  target = tmp_path / name
  shutil.copytree(REPO / "pretrained" / name, target,
                  ignore=shutil.ignore_patterns("audio", "figures", "*.png"))
  return target


def _rewrite(folder, change_raw=None, change_metadata=None):
  """Edits a weights file's arrays and/or metadata without resealing it."""
  path = folder / checkpoints.WEIGHTS_FILE
  raw = flax.serialization.msgpack_restore(path.read_bytes())
  metadata = json.loads(raw.pop("metadata"))
  if change_raw:
    change_raw(raw)
  if change_metadata:
    change_metadata(metadata)
  raw["metadata"] = json.dumps(metadata)
  files.write_bytes(path, flax.serialization.msgpack_serialize(raw))


def _edit_first_kernel(raw, edit):
  """Replaces the first parameter array (in sorted key order) with `edit(copy of it)`."""
  parent, key = raw, "params"
  while isinstance(parent[key], dict):
    parent, key = parent[key], sorted(parent[key])[0]
  value = np.array(parent[key])
  edit(value)
  parent[key] = value


def test_every_shipped_folder_is_sealed_and_loads():
  for folder in sorted((REPO / "pretrained").iterdir()):
    metadata = checkpoints.read_weights_metadata(folder)
    assert {"weights_sha256", "config_sha256"} <= set(metadata), folder
    assert metadata["config_sha256"] == run_config.function_digest(
        json.loads((folder / "config.json").read_text()))
  config, state, scale = vqvae_train.load_trained(REPO / "pretrained" / "model1")
  assert scale > 0 and config.task == "vqvae"


def test_a_changed_number_fails_the_checksum(tmp_path):
  folder = _copy("model1", tmp_path)
  def nudge(kernel):
    kernel.flat[0] = np.nextafter(kernel.flat[0], np.inf)   # one ulp: still a plausible weight
  _rewrite(folder, lambda raw: _edit_first_kernel(raw, nudge))
  with pytest.raises(errors.WorkdirError, match="model1/weights.msgpack fails its checksum"):
    vqvae_train.load_trained(folder)


@pytest.mark.parametrize("field", ["params", "codebook"])
def test_a_missing_array_is_refused_not_zero_filled(tmp_path, field):
  folder = _copy("model1", tmp_path)
  _rewrite(folder, lambda raw: raw.pop(field),
           lambda m: m.pop("weights_sha256"))   # not even a checksum to catch it
  with pytest.raises(errors.WorkdirError, match=f"weights.msgpack lacks {field}"):
    vqvae_train.load_trained(folder)


def test_non_finite_weights_are_refused(tmp_path):
  folder = _copy("model1", tmp_path)
  _rewrite(folder, lambda raw: _edit_first_kernel(raw, lambda k: k.flat.__setitem__(7, np.nan)),
           lambda m: m.pop("weights_sha256"))
  with pytest.raises(errors.WorkdirError, match="holds NaN or infinite values"):
    vqvae_train.load_trained(folder)


def test_a_flipped_byte_in_the_file_is_a_one_line_error(tmp_path):
  folder = _copy("model1", tmp_path)
  path = folder / checkpoints.WEIGHTS_FILE
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x40
  path.write_bytes(bytes(data))
  with pytest.raises(errors.WorkdirError, match="model1/weights.msgpack (fails its checksum|is "
                     "unreadable)"):
    vqvae_train.load_trained(folder)


@pytest.mark.parametrize("section,field,value", [("data", "sample_rate", 16000),
                                                  ("audio", "hop_length", 32),
                                                  ("rvq", "levels", 4)])
def test_an_edited_config_is_refused(tmp_path, section, field, value):
  folder = _copy("model1", tmp_path)
  saved = json.loads((folder / "config.json").read_text())
  saved[section][field] = value
  (folder / "config.json").write_text(json.dumps(saved))
  with pytest.raises(errors.WorkdirError, match="config.json was changed after its weights"):
    vqvae_train.load_trained(folder)


def test_where_the_data_lives_may_still_change(tmp_path):
  folder = _copy("model1", tmp_path)
  saved = json.loads((folder / "config.json").read_text())
  saved["data"]["data_dir"] = "/somewhere/else"      # a read field: not part of the function
  (folder / "config.json").write_text(json.dumps(saved))
  assert vqvae_train.load_trained(folder)[0].data.data_dir == "/somewhere/else"


@pytest.mark.parametrize("scale", [0.0, -0.06, "0.06"])
def test_a_bad_data_scale_is_refused(tmp_path, scale):
  folder = _copy("model1", tmp_path)
  _rewrite(folder, change_metadata=lambda m: m.update(data_scale=scale))
  with pytest.raises(errors.WorkdirError, match="data scale"):
    vqvae_train.load_trained(folder)


def test_a_prior_refuses_a_vqvae_it_was_not_trained_on(tmp_path):
  """Another VQ-VAE of the same shapes (model6's weights, one number changed, sealed again as an
  export would) in the place of the prior's: refused; the real one passes."""
  other = _copy("model6", tmp_path)
  path = other / checkpoints.WEIGHTS_FILE
  raw = flax.serialization.msgpack_restore(path.read_bytes())
  metadata = json.loads(raw.pop("metadata"))
  _edit_first_kernel(raw, lambda k: k.flat.__setitem__(0, k.flat[0] + 0.1))
  metadata["weights_sha256"] = checkpoints.weights_digest(raw)
  raw["metadata"] = json.dumps(metadata)
  files.write_bytes(path, flax.serialization.msgpack_serialize(raw))
  prior = REPO / "pretrained" / "prior"
  for vqvae, refused in ((other, True), (REPO / "pretrained" / "model6", False)):
    config = config_dict.ConfigDict({"vqvae_workdir": str(vqvae),
                                     "data": {"data_dir": None, "cache_dir": None}})
    run = prior_targets.load_vqvae(config, with_data=False)
    if refused:
      with pytest.raises(errors.WorkdirError, match="trained on another VQ-VAE"):
        prior_targets.check_vqvae(prior, config, run)
    else:
      prior_targets.check_vqvae(prior, config, run)
