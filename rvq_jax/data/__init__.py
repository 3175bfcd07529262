"""FSDD discovery and download, WAV reading, split, filtering, padding, scaling, caching."""

from rvq_jax.data.batches import map_batches
from rvq_jax.data.batches import padded_batches
from rvq_jax.data.download import cache_root
from rvq_jax.data.download import download_release
from rvq_jax.data.download import find_recordings
from rvq_jax.data.fsdd import FSDD_SPEAKERS
from rvq_jax.data.fsdd import SPLITS
from rvq_jax.data.fsdd import BadRecordingWarning
from rvq_jax.data.fsdd import Dataset
from rvq_jax.data.fsdd import Split
from rvq_jax.data.fsdd import load_dataset
from rvq_jax.data.fsdd import load_training_dataset
from rvq_jax.data.fsdd import parse_name
from rvq_jax.data.fsdd import read_recording
from rvq_jax.data.fsdd import read_wav
from rvq_jax.data.fsdd import validate_data_config
from rvq_jax.data.fsdd import write_npz_atomically
from rvq_jax.data.fsdd import write_wav

__all__ = [
    "BadRecordingWarning",
    "Dataset",
    "FSDD_SPEAKERS",
    "SPLITS",
    "Split",
    "cache_root",
    "download_release",
    "find_recordings",
    "load_dataset",
    "load_training_dataset",
    "map_batches",
    "padded_batches",
    "parse_name",
    "read_recording",
    "read_wav",
    "validate_data_config",
    "write_npz_atomically",
    "write_wav",
]
