"""Test set-up: 8 simulated CPU devices (before JAX is imported anywhere), FSDD and config fixtures."""

import os

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
# One persistent compilation cache for the session, inherited by the tests' subprocesses: many
# tests compile the same tiny steps again (a new jit of the same config, a resumed run in a fresh
# process), and reusing the executables cut those tests' time by about a third. Fresh per session,
# so a run never reads executables of another checkout; a user's own cache dir is respected.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  import tempfile  # noqa: E402
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="rvq_jax_xla_cache_")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import pathlib  # noqa: E402

import pytest  # noqa: E402

# The slowest test files first (their seconds in a 2-worker run, 2026-12-06): with
# `-n 2 --dist loadfile` a long file started last would run alone at the end while the other
# worker idles. Only the order changes; within a file the tests keep theirs.
SLOWEST_FILES = ("test_quality.py", "test_prior.py", "test_realnvp.py", "test_train.py",
                 "test_autoencoder.py", "test_reliability.py", "test_compare.py",
                 "test_code_transformer.py", "test_main.py", "test_multihost.py",
                 "test_examples.py", "test_launch.py", "test_codec.py",
                 "test_classifier_training.py", "test_codec_hostile.py", "test_bitstream.py",
                 "test_sample_outputs.py", "test_prior_bound.py")


def pytest_collection_modifyitems(items):
  def rank(item):
    name = item.path.name
    return SLOWEST_FILES.index(name) if name in SLOWEST_FILES else len(SLOWEST_FILES)
  items.sort(key=rank)   # stable: each file's own order is kept


REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED_FSDD = REPO.parent / "shared" / "fsdd" / "recordings"


def fsdd_dir() -> pathlib.Path | None:
  """The real FSDD recordings: $FSDD_DIR, else ../shared/fsdd/recordings beside the checkout."""
  path = pathlib.Path(os.environ.get("FSDD_DIR") or _SHARED_FSDD)
  return path if path.is_dir() else None


@pytest.fixture(scope="session")
def fsdd_recordings() -> pathlib.Path:
  path = fsdd_dir()
  if path is None:
    message = "real FSDD not found: set FSDD_DIR to the recordings folder"
    if os.environ.get("CI"):  # CI must test on the real data, never skip it silently
      pytest.fail(message)
    pytest.skip(message)
  return path


@pytest.fixture
def default_config():
  from rvq_jax.configs import default  # pylint: disable=g-import-not-at-top
  return default.get_config()


@pytest.fixture(scope="session")
def fsdd_dataset(fsdd_recordings, tmp_path_factory):
  """The real FSDD prepared with the default data config (cache in a session tmp dir)."""
  from rvq_jax import data  # pylint: disable=g-import-not-at-top
  from rvq_jax.configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.data.data_dir = str(fsdd_recordings)
  config.data.cache_dir = str(tmp_path_factory.mktemp("fsdd_cache"))
  return data.load_dataset(config.data)


SHIPPED_CLASSIFIER = REPO / "pretrained" / "classifier"


def tiny_classifier_config(fsdd_recordings, cache):
  """A small digit classifier (about 3 minutes on 2 CPU cores with its report, test accuracy well
  above chance)."""
  from rvq_jax.configs import classifier  # pylint: disable=g-import-not-at-top
  config = classifier.get_config()
  config.data.data_dir = str(fsdd_recordings)
  config.data.cache_dir = str(cache)
  config.classifier.features = (8, 16, 16, 32)
  config.classifier.embedding_dim = 32
  # Enough to learn digits well above chance; the judge of the other tests is the shipped
  # classifier (`shipped_classifier`), whose quality tests/test_quality.py checks.
  config.train.num_epochs = 3   # test accuracy 0.33 (2026-12-06; 4 epochs: 0.26-0.3), 37 s less
  config.train.batch_size = 32
  config.classifier.learning_rate = 3e-3
  config.classifier.noise_examples = 32
  config.eval.griffin_lim_iterations = 8   # the robustness rows' Griffin-Lim
  return config


@pytest.fixture(scope="session")
def classifier_dir(fsdd_recordings, tmp_path_factory):
  """(workdir, classifier_eval.json contents) of a trained tiny classifier, shared by the tests."""
  from rvq_jax import tasks  # pylint: disable=g-import-not-at-top
  workdir = tmp_path_factory.mktemp("classifier")
  config = tiny_classifier_config(fsdd_recordings, tmp_path_factory.mktemp("cache"))
  result = tasks.train_classifier(config, str(workdir))
  return workdir, result


@pytest.fixture(scope="session")
def tiny_vqvae_run(fsdd_recordings, tmp_path_factory):
  """(config, workdir) of a tiny RVQ-VAE trained 4 steps with `--mode=train` (its report, audio
  and metrics), shared by the evaluate and codec tests."""
  from rvq_jax import tasks  # pylint: disable=g-import-not-at-top
  from tests.test_train import tiny_config  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("tiny_vqvae")
  config = tiny_config(fsdd_recordings, root / "cache")
  config.train.num_steps = 4
  config.eval.num_audio = 2
  config.eval.num_figures = 0
  config.eval.griffin_lim_iterations = 8
  config.eval.perceptual_examples = 40
  tasks.train_vqvae(config, str(root / "vq"))
  return config, root / "vq"
