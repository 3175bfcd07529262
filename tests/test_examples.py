"""examples/: code outside the package that reuses the step and the quantizer with its own model."""

import importlib.util

import numpy as np

from tests.conftest import REPO


def _load(name):
  spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_waveform_codec_learns_with_the_projects_step_and_quantizer(fsdd_recordings):
  """A 1-D codec on raw FSDD waveforms (no spectrograms) trained by `steps.make_train_step`: the
  loss falls, the codebooks stay finite and every further level decoded lowers the error."""
  example = _load("waveform_codec")
  state, losses, snr = example.train(num_steps=40, batch_size=8, levels=3, codes=64, test_clips=16,
                                     data_dir=str(fsdd_recordings))
  assert np.all(np.isfinite(losses))
  assert losses[-5:].mean() < 0.6 * losses[:5].mean(), losses
  assert np.isfinite(np.asarray(state.codebook.embed)).all()
  assert int(state.step) == 40
  assert snr[0] > 1.0, snr                       # decodes something like the input
  assert snr[-1] > snr[0], snr                   # the residual levels add detail
