"""Every config loads, states one change from its parent, and takes command-line overrides."""

import importlib

from absl import flags
from ml_collections import config_flags
import pytest

from tests.conftest import REPO

NAMES = ["default", "model1", "model2", "model3", "model4", "model5", "model6", "model7",
         "quick"]


@pytest.mark.parametrize("name", NAMES)
def test_config_loads_and_validates(name):
  from rvq_jax.train import validation  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f"rvq_jax.configs.{name}").get_config()
  validation.validate_config(config, num_devices=1)
  assert config.model.latent_dim >= 1


def test_the_experiment_table():
  get = lambda n: importlib.import_module(f"rvq_jax.configs.{n}").get_config()
  m1, m2, m3, m4, m5 = (get(f"model{i}") for i in range(1, 6))
  assert (m1.rvq.levels, m1.rvq.decay, m1.rvq.init) == (5, 0.99, "uniform")
  assert m2.rvq.init == "glorot_normal" and m2.rvq.decay == m1.rvq.decay
  assert m3.model.decoder == "gaussian" and m3.rvq.init == "glorot_normal"
  assert m4.model.decoder == "deterministic" and 0.995 <= m4.rvq.decay <= 0.999
  assert m5.rvq.levels in range(8, 11) and m5.rvq.decay == m4.rvq.decay
  for m in (m1, m2, m3, m4, m5):
    assert (m.model.latent_dim, m.rvq.codes, m.loss.beta) == (128, 512, 0.25)
  m6 = get("model6")   # the project's recipe: model5's networks and quantizer shape
  assert (m6.rvq.levels, m6.rvq.decay) == (m5.rvq.levels, m5.rvq.decay)
  assert (m6.audio.representation, m6.rvq.init, m6.rvq.dropout) == ("logmag_phase", "kmeans", False)
  assert m6.rvq.dead_code_steps > 0
  m7 = get("model7")   # model6 on the complex STFT with a loss on the log magnitude
  assert (m7.audio.representation, m7.rvq.init, m7.rvq.levels) == ("real_imag", "kmeans", 8)
  assert m7.loss.log_magnitude_weight > 0 and m6.loss.log_magnitude_weight == 0


def _parse(argv):
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  return values.config


def test_overrides_parse_on_fresh_flags():
  config_file = f"--config={REPO / 'configs' / 'model5.py'}"
  config = _parse(["prog", config_file, "--config.rvq.levels=10", "--config.train.batch_size=64",
                   "--config.audio.representation=real_imag", "--config.data.data_dir=/x"])
  assert config.rvq.levels == 10 and config.train.batch_size == 64
  assert config.audio.representation == "real_imag" and config.data.data_dir == "/x"
  with pytest.raises(AttributeError, match=r"Did you mean \"levels\""):
    _parse(["prog", config_file, "--config.rvq.level=10"])
  with pytest.raises(flags.Error):
    _parse(["prog", config_file, "--config.rvq.levels=3.5"])


def test_realnvp_config_validates_and_takes_overrides():
  from rvq_jax.train import validation  # pylint: disable=g-import-not-at-top
  config_file = f"--config={REPO / 'configs' / 'realnvp.py'}"
  config = _parse(["prog", config_file, "--config.sample.digit=7",
                   "--config.sample.temperatures=(1.0,0.5)", "--config.train.num_steps=20"])
  validation.validate_config(config, num_devices=1)
  assert config.sample.digit == 7 and tuple(config.sample.temperatures) == (1.0, 0.5)
  assert config.train.num_steps == 20 and config.prior.base == "class_conditional"
  with pytest.raises(AttributeError, match=r"Did you mean \"dequantization\""):
    _parse(["prog", config_file, "--config.target.dequantisation=0.1"])
