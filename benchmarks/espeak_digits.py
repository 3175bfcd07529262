"""Spoken digits in voices no model here has heard (issue 32's unseen-voice set): espeak-ng says
"zero" .. "nine" in several accents, voice variants and speeds; sox resamples each to 8 kHz mono
16-bit, trims the silence at both ends (as FSDD's recordings are trimmed) and sets the peak to
`--peak_db` dBFS. Files are named as FSDD's, `<digit>_<voice>-<variant>-<speed>_0.wav`, so a
reader takes the digit from the name.

COMMAND (installs nothing: `apt-get install espeak-ng sox` first):
  python benchmarks/espeak_digits.py --out=runs/espeak_digits
then score codecs on it: python benchmarks/rate_distortion.py --clips_dir=runs/espeak_digits ...
"""

import itertools
import pathlib
import shutil
import subprocess
import sys

from absl import app
from absl import flags

_OUT = flags.DEFINE_string("out", "runs/espeak_digits", "Folder for the WAVs.")
_VOICES = flags.DEFINE_list("voices", ["en-us", "en-gb", "en-gb-scotland", "en-029"],
                            "espeak-ng voices (accents).")
_VARIANTS = flags.DEFINE_list("variants", ["m3", "f2"], "espeak-ng voice variants (+name).")
_SPEEDS = flags.DEFINE_list("speeds", ["120", "160", "200"], "Words per minute.")
_PEAK_DB = flags.DEFINE_float("peak_db", -3.0, "Peak level of every clip, dBFS.")

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRIM = ("silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse")


def say(word: str, voice: str, variant: str, speed: str, path: pathlib.Path) -> None:
  """`word` spoken by espeak-ng as an 8 kHz mono 16-bit WAV at `path`, silence trimmed."""
  raw = path.with_suffix(".raw.wav")
  subprocess.run(["espeak-ng", "-v", f"{voice}+{variant}", "-s", speed, "-w", str(raw), word],
                 check=True, capture_output=True)
  subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path), *TRIM,
                  "gain", "-n", str(_PEAK_DB.value)], check=True, capture_output=True)
  raw.unlink()


def main(argv):
  del argv
  missing = [tool for tool in ("espeak-ng", "sox") if not shutil.which(tool)]
  if missing:
    sys.exit(f"{' and '.join(missing)} not found: apt-get install espeak-ng sox")
  out = pathlib.Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  settings = list(itertools.product(_VOICES.value, _VARIANTS.value, _SPEEDS.value))
  for digit, word in enumerate(WORDS):
    for voice, variant, speed in settings:
      say(word, voice, variant, speed, out / f"{digit}_{voice}-{variant}-{speed}_0.wav")
  print(f"{len(WORDS) * len(settings)} clips in {out}")


if __name__ == "__main__":
  app.run(main)
