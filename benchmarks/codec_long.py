"""Memory and time of the codec on long recordings (issue 31): `--mode=reconstruct`, `encode` and
`decode` through the front door, one process per recording, on speech made by laying FSDD test
recordings end to end (with 0.2 s of silence between them) to 1, 5, 10 and 30 minutes; and on a
folder of `--folder_clips` separate test recordings (issue 32: clips/s through one process).

COMMAND (from the repository root; results go to benchmarks/RESULTS.md by hand, with the machine):
  python benchmarks/codec_long.py --workdir=pretrained/model7 --minutes=1,5,10,30

Peak memory is the child process's maximum resident set size (getrusage RUSAGE_CHILDREN, read
after each child exits: the largest so far, so the lengths run from shortest to longest); time is
the child's wall-clock time, including the start-up and the model's compilation (the time per
minute of audio falls toward the coding's own cost as the recordings grow).
"""

import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, ".")
from rvq_jax import data as data_lib  # noqa: E402  pylint: disable=g-import-not-at-top

_WORKDIR = flags.DEFINE_string("workdir", "pretrained/model7", "The codec's weights.")
_MINUTES = flags.DEFINE_list("minutes", ["1", "5", "10", "30"], "Recording lengths, minutes.")
_MODES = flags.DEFINE_list("modes", ["reconstruct", "encode", "decode"], "Codec modes to time.")
_FOLDER = flags.DEFINE_integer("folder_clips", 300, "Test recordings in the folder case (0: skip).")
_DATA = flags.DEFINE_string("data_dir", os.environ.get("FSDD_DIR", "../shared/fsdd/recordings"),
                            "FSDD recordings (the test split's files are laid end to end).")


def long_speech(minutes: float, data_dir: str, rate: int = 8000) -> np.ndarray:
  """`minutes` of real speech: FSDD test recordings (index 0-4) in a cycle, 0.2 s apart."""
  paths = test_paths(data_dir)
  gap = np.zeros(int(0.2 * rate), np.float32)
  pieces, total, i = [], 0, 0
  while total < minutes * 60 * rate:
    clip = data_lib.read_wav(paths[i % len(paths)])[0]
    pieces += [clip, gap]
    total += len(clip) + len(gap)
    i += 1
  return np.concatenate(pieces)[:int(minutes * 60 * rate)]


def test_paths(data_dir: str) -> list[pathlib.Path]:
  """The official test split's recordings (index 0-4), sorted."""
  return sorted(p for p in pathlib.Path(data_dir).glob("*.wav")
                if int(p.stem.split("_")[-1]) <= 4)


def run_mode(mode: str, input_path, output_path) -> float:
  start = time.perf_counter()
  subprocess.run([sys.executable, "-m", "rvq_jax.main", f"--workdir={_WORKDIR.value}",
                  f"--mode={mode}", f"--input={input_path}", f"--output={output_path}"],
                 check=True, capture_output=True)
  return time.perf_counter() - start


def main(argv):
  del argv
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for minutes in sorted(float(m) for m in _MINUTES.value):
      wav = tmp / f"{minutes:g}min.wav"
      data_lib.write_wav(wav, long_speech(minutes, _DATA.value), 8000)
      outputs = {"reconstruct": (wav, tmp / "r.wav"), "encode": (wav, tmp / "c.rvqc"),
                 "decode": (tmp / "c.rvqc", tmp / "d.wav")}
      for mode in _MODES.value:
        seconds = run_mode(mode, *outputs[mode])
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        rows.append((minutes, mode, seconds, peak_gb))
        print(f"| {minutes:g} | {mode} | {seconds:.1f} | {seconds / minutes:.1f} | "
              f"{minutes * 60 / seconds:.1f} | {peak_gb:.2f} |", flush=True)
    if _FOLDER.value:
      folder = tmp / "clips"
      folder.mkdir()
      paths = test_paths(_DATA.value)[:_FOLDER.value]
      audio_seconds = 0.0
      for p in paths:
        samples, rate = data_lib.read_wav(p)
        data_lib.write_wav(folder / p.name, samples, rate)
        audio_seconds += len(samples) / rate
      for mode, (src, out) in (("reconstruct", (folder, tmp / "r")), ("encode", (folder, tmp / "c")),
                               ("decode", (tmp / "c", tmp / "d"))):
        seconds = run_mode(mode, src, out)
        print(f"| folder of {len(paths)} clips ({audio_seconds / 60:.1f} min) | {mode} | "
              f"{seconds:.1f} s | {len(paths) / seconds:.1f} clips/s | "
              f"{audio_seconds / seconds:.1f}x real time |", flush=True)


if __name__ == "__main__":
  app.run(main)
