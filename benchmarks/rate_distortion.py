"""Rate-distortion of the project's codecs beside the codecs people use (issue 32), on the official
test split or on a folder of clips (the unseen voices of benchmarks/espeak_digits.py): Opus, Speex
narrow-band, Codec2, G.711 mu-law and each RVQ-VAE at every level count (or those of --levels),
each through the same metric code (PESQ-nb, STOI, log-spectral distance, digit accuracy of the
shipped judge classifier, beside its accuracy on the uncoded clips).

COMMAND (from the repository root; installs nothing: `apt-get install opus-tools speex codec2 sox`
first; a codec whose tools are missing is skipped with a message):
  python benchmarks/rate_distortion.py --workdirs=pretrained/model7 --out=runs/rate_distortion
  python benchmarks/espeak_digits.py --out=runs/espeak_digits
  python benchmarks/rate_distortion.py --workdirs=pretrained/model7 \
      --clips_dir=runs/espeak_digits --out=runs/rate_distortion_espeak
  A new model beside an earlier record, scoring only the model:
  python benchmarks/rate_distortion.py --workdirs=runs/<name> --codecs= \
      --add_to=docs/codec/test/rate_distortion.json --out=runs/rate_distortion_<name>

Each model is drawn twice: coded to a fixed number of levels (format 2), and to each position's own
depth (`--depths`, format 3: `codec.truncate_depth`, the fewest levels within a tolerance of all of
them). Bit rates are real: the coded payload's bytes over the clips' duration, the container left out
for every codec alike (Ogg pages' headers and the first two header pages of Opus and Speex; the
RVQ bitstream's 56-byte header), and beside it the whole files' rate. External codecs' outputs
are aligned to the input by cross-correlation (their algorithmic delay) before scoring. Writes
<out>/rate_distortion.json, <out>/rate_distortion.md (the table) and <out>/rate_distortion.png
(PESQ-nb against kbit/s); with --listen=n, the first n clips as each row decodes them.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np
import soundfile as sf

sys.path.insert(0, ".")
# pylint: disable=g-import-not-at-top
from ml_collections import config_dict  # noqa: E402

from rvq_jax import audio  # noqa: E402
from rvq_jax import bitstream  # noqa: E402
from rvq_jax import codec as codec_lib  # noqa: E402
from rvq_jax import data as data_lib  # noqa: E402
from rvq_jax.eval import codec_sections  # noqa: E402
from rvq_jax.eval import judge  # noqa: E402
from rvq_jax.eval import metrics  # noqa: E402

_WORKDIRS = flags.DEFINE_list("workdirs", ["pretrained/model7"],
                              "RVQ-VAE codecs' weights folders (each a curve); the first one's "
                              "data config finds the test split.")
_LEVELS = flags.DEFINE_list("levels", None, "RVQ level counts to score (default: every count).")
_DEPTHS = flags.DEFINE_list(
    "depths", ["5:1", "1.2:1", "0.3:1", "0.1:1", "0.1:2", "0.03:2", "0.03:3", "0.01:4"],
    "Variable-depth settings (bitstream format 3), each codec.depth_tolerance:codec.min_levels "
    "over all levels: a second curve per model ('<workdir>, variable depth'); empty: none.")
_CLIPS_DIR = flags.DEFINE_string("clips_dir", None, "Score the WAVs of this folder (the digit is "
                                 "the name's first character, as FSDD's) instead of the test split.")
_OUT = flags.DEFINE_string("out", "runs/rate_distortion", "Folder for the table, JSON and plot.")
_CLIPS = flags.DEFINE_integer("clips", None, "Score only the first n clips (default: all).")
_CODECS = flags.DEFINE_list("codecs", ["opus", "speex", "codec2", "mu-law"],
                            "External codecs to run beside the RVQ-VAEs.")
_CLASSIFIER = flags.DEFINE_string("classifier_workdir", "pretrained/classifier", "The judge.")
_OPUS = flags.DEFINE_list("opus_kbps", ["6", "8", "12", "16", "24"], "Opus target bit rates.")
_SPEEX = flags.DEFINE_list("speex_quality", ["2", "4", "6", "8", "10"], "Speex qualities.")
_CODEC2 = flags.DEFINE_list("codec2_modes", ["3200", "1200"], "Codec2 modes (bit/s).")
_ADD_TO = flags.DEFINE_string(
    "add_to", None, "An earlier rate_distortion.json of the same clips: keep its rows but those of "
    "--workdirs, add this run's, and write the whole record to --out (run with --codecs= to score "
    "only the models).")
_LISTEN = flags.DEFINE_integer("listen", 0, "Also write the first n clips as every row decodes "
                               "them (and the originals), <out>/listen/<row>/<clip>.wav, 16-bit.")

RATE = 8000
TOOLS = {"opus": ("opusenc", "opusdec"), "speex": ("speexenc", "speexdec"),
         "codec2": ("c2enc", "c2dec"), "mu-law": ("sox",)}


def _run(*args):
  subprocess.run([str(a) for a in args], check=True, capture_output=True)


def ogg_payload_bytes(path) -> int:
  """Bytes of the packets of an Ogg stream after its two header pages (Opus and Speex put their
  identification and comment headers there), page headers left out."""
  data, total, page, pos = pathlib.Path(path).read_bytes(), 0, 0, 0
  while pos < len(data):
    if data[pos:pos + 4] != b"OggS":
      raise ValueError(f"{path}: not an Ogg page at byte {pos}")
    segments = data[pos + 26]
    sizes = data[pos + 27:pos + 27 + segments]
    if page >= 2:
      total += sum(sizes)
    pos += 27 + segments + sum(sizes)
    page += 1
  return total


def align(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 800) -> np.ndarray:
  """`decoded` shifted by the lag (0..max_lag samples of codec delay) that best matches
  `reference`, cut or zero-padded to its length."""
  n = len(reference)
  padded = np.concatenate([decoded, np.zeros(max_lag + n)])
  lags = [float(np.dot(reference, padded[lag:lag + n])) for lag in range(max_lag + 1)]
  lag = int(np.argmax(lags))
  return padded[lag:lag + n].astype(np.float32)


def external(kind: str, setting: str, pcm: np.ndarray, tmp: pathlib.Path):
  """(decoded [n], payload bytes, file bytes) of one clip through an external codec."""
  wav, raw = tmp / "in.wav", tmp / "in.raw"
  sf.write(wav, pcm, RATE, subtype="PCM_16")
  if kind == "opus":
    coded = tmp / "c.opus"
    _run("opusenc", "--quiet", "--bitrate", setting, "--framesize", "20", wav, coded)
    _run("opusdec", "--quiet", "--rate", RATE, coded, tmp / "d.wav")
    decoded, payload = sf.read(tmp / "d.wav", dtype="float32")[0], ogg_payload_bytes(coded)
  elif kind == "speex":
    coded = tmp / "c.spx"
    _run("speexenc", "--narrowband", "--quality", setting, wav, coded)
    _run("speexdec", coded, tmp / "d.wav")
    decoded, payload = sf.read(tmp / "d.wav", dtype="float32")[0], ogg_payload_bytes(coded)
  elif kind == "codec2":
    coded = tmp / "c.bit"
    sf.write(raw, pcm, RATE, subtype="PCM_16", format="RAW")
    _run("c2enc", setting, raw, coded)
    _run("c2dec", setting, coded, tmp / "d.raw")
    decoded = sf.read(tmp / "d.raw", samplerate=RATE, channels=1, subtype="PCM_16",
                      format="RAW", dtype="float32")[0]
    payload = coded.stat().st_size
  else:   # G.711 mu-law: 8 bits per sample
    coded = tmp / "c.wav"
    _run("sox", wav, "-e", "mu-law", "-b", "8", coded)
    _run("sox", coded, "-e", "signed-integer", "-b", "16", tmp / "d.wav")
    decoded, payload = sf.read(tmp / "d.wav", dtype="float32")[0], len(pcm)
  if decoded.ndim > 1:
    decoded = decoded[:, 0]
  return align(pcm, decoded), payload, coded.stat().st_size


def score(reference, decoded, lengths, classifier, audio_config, digits, scale: float) -> dict:
  """The same metrics for every codec: PESQ-nb, STOI, LSD (dB) and the judge's digit accuracy
  (on the decoded clips at the model's input scale, `scale` the training waveforms' std)."""
  n = -(-max(len(x) for x in reference) // audio_config.hop_length) * audio_config.hop_length
  ref = np.stack([np.pad(x, (0, n - len(x))) for x in reference])
  est = np.stack([np.pad(x, (0, n - len(x))) for x in decoded])
  pesq = metrics.pesq_nb(ref, est, lengths, RATE, 8.0)
  stoi = metrics.stoi(ref, est, lengths, RATE)
  lsd = float(np.mean(np.asarray(metrics.log_spectral_distance(
      ref, est, audio_config.frame_length, audio_config.hop_length, np.asarray(lengths)))))
  fixed = np.zeros((len(est), 8192), np.float32)
  for i, x in enumerate(decoded):
    fixed[i, :min(len(x), 8192)] = x[:8192]
  specs = audio.to_spectrogram(fixed / scale, audio_config)
  heard = np.asarray(classifier.predict(specs, audio_config)[0]).argmax(-1)
  return {"pesq_nb": pesq["per_file_mean"], "pesq_files": pesq["files_scored"],
          "stoi": stoi["per_file_mean"], "lsd_db": lsd,
          "digit_accuracy": float((heard == digits).mean())}


def load_clips(codec) -> tuple[list[np.ndarray], np.ndarray, str, list[str]]:
  """PCM float32 clips at 8 kHz, their digits, a description and their names: the test split of
  `codec`'s data, or the WAVs of --clips_dir."""
  if _CLIPS_DIR.value:
    paths = sorted(pathlib.Path(_CLIPS_DIR.value).glob("*.wav"))[:_CLIPS.value]
    if not paths:
      sys.exit(f"{_CLIPS_DIR.value}: no WAV files (--clips_dir).")
    clips = [codec_lib.read_audio(p, RATE) for p in paths]
    return (clips, np.asarray([int(p.name[0]) for p in paths]), f"{_CLIPS_DIR.value}",
            [p.stem for p in paths])
  test = data_lib.load_dataset(codec.config.data)["test"]
  count = _CLIPS.value or len(test)
  clips = [np.asarray(test.waveforms[i][:test.lengths[i]]) * codec.scale for i in range(count)]
  return clips, np.asarray(test.digits[:count]), "test split", list(test.names[:count])


def load(workdir: str) -> codec_lib.Codec:
  return codec_lib.load_codec(config_dict.ConfigDict({"data": {"data_dir": None}}), workdir)


def rvq_rows(workdir: str, codec, clips, lengths, digits, seconds, classifier, scorer_config,
             scale):
  """The rows of one RVQ-VAE, one per level count and one per variable depth (`--depths`): real
  bitstreams (`bitstream.pack`), decoded."""
  model = codec_lib.entropy_model(codec, workdir)
  levels = [int(v) for v in _LEVELS.value] if _LEVELS.value else range(1, codec.config.rvq.levels + 1)
  # RVQ codes of the first l levels do not depend on how many more are computed: code once.
  all_codes = [codec_lib.encode(codec, pcm, codec.config.rvq.levels) for pcm in clips]
  embed = np.asarray(codec.embed)

  def coded_row(cut, setting, curve):   # cut: full codes -> the codes this row writes
    decoded, payload, files, formats = [], 0, 0, set()
    for pcm, full_codes in zip(clips, all_codes):
      codes = cut(full_codes)
      data = bitstream.pack(codes, len(pcm), RATE, codec.fingerprint, model)
      formats.add(bitstream.read_header(data, workdir).version)
      decoded.append(codec_lib.decode(codec, codes, len(pcm)))
      payload, files = payload + len(data) - bitstream.HEADER.size, files + len(data)
    row = _row("rvq", setting, payload, files, seconds, clips, decoded, lengths, classifier,
               scorer_config, digits, scale, model=curve)
    return {**row, "bitstream_format": sorted(formats)}

  rows = [coded_row(lambda c, level=level: c[..., :level], str(level), workdir)
          for level in levels if 1 <= level <= codec.config.rvq.levels]
  for spec in _DEPTHS.value:
    tolerance, min_levels = float(spec.split(":")[0]), int(spec.split(":")[1])
    rows.append(coded_row(
        lambda c, t=tolerance, m=min_levels: codec_lib.truncate_depth(embed, c, t, m),
        f"{codec.config.rvq.levels}, depth tolerance {tolerance:g}, at least {min_levels}",
        variable_depth_curve(workdir)))
  return rows


def _slug(name: str) -> str:
  """A row's folder name: each run of other characters than letters, digits and '.' as '_'."""
  return re.sub(r"[^A-Za-z0-9.]+", "_", name)


def variable_depth_curve(workdir: str) -> str:
  """The name of a model's second curve (each position to its own depth) in the records."""
  return f"{workdir}, variable depth"


def write_listening(name: str, decoded: list[np.ndarray]) -> None:
  """The first --listen clips of a row (`name`: codec, setting) as 16-bit WAVs under
  <out>/listen/<_slug(name)>/<i>.wav."""
  folder = pathlib.Path(_OUT.value) / "listen" / _slug(name)
  folder.mkdir(parents=True, exist_ok=True)
  for i, pcm in enumerate(decoded[:_LISTEN.value]):
    sf.write(folder / f"{i:03d}.wav", np.clip(pcm, -1, 1), RATE, subtype="PCM_16")


def _row(kind, setting, payload, files, seconds, clips, decoded, lengths, classifier,
         scorer_config, digits, scale, model=None) -> dict:
  if _LISTEN.value:
    write_listening(f"{model or kind} {setting}", decoded)
  row = {"codec": kind, "setting": setting, "kbps": 8 * payload / seconds / 1000,
         "file_kbps": 8 * files / seconds / 1000, **({"model": model} if model else {}),
         **score(clips, decoded, lengths, classifier, scorer_config, digits, scale)}
  print(f"| {model or kind} {setting} | {row['kbps']:.2f} | {row['file_kbps']:.2f} | "
        f"{row['pesq_nb']:.2f} | {row['stoi']:.3f} | {row['lsd_db']:.2f} | "
        f"{row['digit_accuracy']:.3f} |", flush=True)
  return row


def main(argv):
  del argv
  out = pathlib.Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  codecs = {workdir: load(workdir) for workdir in _WORKDIRS.value}
  first = codecs[_WORKDIRS.value[0]]
  clips, digits, source, names = load_clips(first)
  lengths = [len(c) for c in clips]
  seconds = sum(lengths) / RATE
  earlier = earlier_record(source, len(clips), seconds)
  classifier = judge.load_classifier(_CLASSIFIER.value)
  # The judge's spectrograms: the first model's STFT settings and its data's scale (every
  # model here trains on the same FSDD split, so the same scale).
  scorer_config, scale = first.config.audio, first.scale
  heard = score(clips, clips, lengths, classifier, scorer_config, digits, scale)
  if _LISTEN.value:
    write_listening("original", clips)
  print(f"{len(clips)} clips ({source}), {seconds:.0f} s; the judge's digit accuracy on the "
        f"originals: {heard['digit_accuracy']:.3f}", flush=True)
  settings = {"opus": _OPUS.value, "speex": _SPEEX.value, "codec2": _CODEC2.value,
              "mu-law": ["64"]}
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for kind in _CODECS.value:
      if not all(shutil.which(t) for t in TOOLS[kind]):
        print(f"skipped {kind}: {' and '.join(TOOLS[kind])} not found (apt-get install "
              f"{ {'opus': 'opus-tools', 'mu-law': 'sox'}.get(kind, kind)}).", flush=True)
        continue
      for setting in settings[kind]:
        results = [external(kind, setting, pcm, tmp) for pcm in clips]
        rows.append(_row(kind, setting, sum(r[1] for r in results),
                         sum(r[2] for r in results), seconds, clips, [r[0] for r in results],
                         lengths, classifier, scorer_config, digits, scale))
  for workdir, codec in codecs.items():
    rows += rvq_rows(workdir, codec, clips, lengths, digits, seconds, classifier, scorer_config,
                     scale)
  write_outputs(out, rows, source, len(clips), seconds, heard["digit_accuracy"], earlier)
  if _LISTEN.value:
    write_listening_index(rows, names)


def write_listening_index(rows: list[dict], names: list[str]) -> None:
  """<out>/listen/index.md: a table of this run's rows (bit rate and PESQ-nb over all scored
  clips) with a link to each of the first --listen clips as the row decodes it."""
  names = names[:_LISTEN.value]
  lines = ["# Listening: the first clips as each codec decodes them", "",
           f"COMMAND: `python {' '.join(sys.argv)}`", "",
           "kbit/s and PESQ-nb: the row's over every clip the run scored.", "",
           "| codec | setting | kbit/s | PESQ-nb | " + " | ".join(names) + " |",
           "|---|---|---|---|" + "---|" * len(names),
           "| original | | | | " + " | ".join(f"[wav](original/{i:03d}.wav)"
                                             for i in range(len(names))) + " |"]
  for r in rows:
    slug = _slug(f"{r.get('model', r['codec'])} {r['setting']}")
    lines.append(f"| {r.get('model', r['codec'])} | {r['setting']} | {r['kbps']:.2f} | "
                 f"{r['pesq_nb']:.2f} | " + " | ".join(f"[wav]({slug}/{i:03d}.wav)"
                                                       for i in range(len(names))) + " |")
  (pathlib.Path(_OUT.value) / "listen" / "index.md").write_text("\n".join(lines) + "\n")


def earlier_record(source: str, count: int, seconds: float) -> dict | None:
  """The --add_to record, read before any scoring; SystemExit naming it when it is unreadable or
  scores other clips than this run (`source`, `count`, `seconds`)."""
  if not _ADD_TO.value:
    return None
  try:
    earlier = json.loads(pathlib.Path(_ADD_TO.value).read_text())
    same = (earlier["source"], earlier["clips"]) == (source, count) and \
        abs(earlier["seconds"] - seconds) < 1e-6
  except (OSError, ValueError, KeyError, TypeError) as e:
    sys.exit(f"--add_to={_ADD_TO.value} is not a readable rate_distortion.json ({e}).")
  if not same:
    sys.exit(f"--add_to={_ADD_TO.value} scores {earlier['clips']} clips ({earlier['source']}), "
             f"this run {count} ({source}): run both on the same clips.")
  return earlier


def merged(earlier: dict, record: dict) -> dict:
  """`record`'s rows added to an `earlier` record of the same clips (`earlier_record`), its rows
  of `record`'s workdirs dropped, with both records' commands."""
  ours = {curve for w in record["workdirs"] for curve in (w, variable_depth_curve(w))}
  kept = [r for r in earlier["rows"] if r.get("model") not in ours]
  commands = earlier.get("commands", [earlier["command"]]) + [record["command"]]
  return {**record, "workdirs": list(dict.fromkeys(earlier["workdirs"] + record["workdirs"])),
          "command": " && ".join(commands), "commands": commands, "rows": kept + record["rows"]}


def write_outputs(out: pathlib.Path, rows, source: str, count: int, seconds: float,
                  original_accuracy: float, earlier: dict | None = None) -> None:
  """rate_distortion.json (the record the results page reads: rvq_jax/eval/codec_sections.py),
  and the page's table, equal-bit and equal-quality comparisons and plot of it; with --add_to,
  of this run's rows merged into the earlier record's (`merged`)."""
  record = {"source": source, "clips": count, "seconds": seconds, "workdirs": _WORKDIRS.value,
            "command": "python " + " ".join(sys.argv),
            "original_digit_accuracy": original_accuracy, "rows": rows}
  if earlier:
    record = merged(earlier, record)
  (out / "rate_distortion.json").write_text(json.dumps(record, indent=2))
  (out / "rate_distortion.md").write_text("\n".join(
      codec_sections.table(record) + [""] + codec_sections.equal_bits(record) + [""]
      + codec_sections.equal_quality(record)) + "\n")
  codec_sections.figure(record, out / "rate_distortion.png")


if __name__ == "__main__":
  app.run(main)
