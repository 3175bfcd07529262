"""Shipped weights (--mode=export) and the codec modes (reconstruct / encode / decode) on real WAVs."""


import jax
import numpy as np
import pytest
import soundfile as sf

from rvq_jax import audio
from rvq_jax import codec
from rvq_jax import codec_cli
from rvq_jax import errors
from rvq_jax import export
from rvq_jax.models import vqvae
from rvq_jax.train import checkpoints
from rvq_jax.train import vqvae as vqvae_train
from tests.conftest import REPO
from tests.test_train import tiny_config


@pytest.fixture(scope="module")
def shipped(tiny_vqvae_run, tmp_path_factory):
  """(config, training workdir, exported folder) of the session's 4-step tiny VQ-VAE."""
  config, run = tiny_vqvae_run
  pretrained = tmp_path_factory.mktemp("pretrained") / "tiny"
  export.export(config, str(run), str(pretrained))
  return config, run, pretrained


def test_exported_weights_restore_the_trained_state_and_refuse_training(shipped):
  config, run, pretrained = shipped
  assert (pretrained / checkpoints.WEIGHTS_FILE).stat().st_size < 200_000   # no optimizer state
  assert not (pretrained / "checkpoints").exists()
  for name in ("config.json", "metrics.jsonl", "run_info.json"):
    assert (pretrained / name).read_bytes() == (run / name).read_bytes()
  trained, loaded = vqvae_train.restore_state(config, run), vqvae_train.restore_state(config, pretrained)
  assert int(loaded.step) == int(trained.step) == 4
  for a, b in zip(jax.tree.leaves((trained.params, trained.codebook)),
                  jax.tree.leaves((loaded.params, loaded.codebook))):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(errors.WorkdirError, match="shipped weights"):
    vqvae_train.train(config, str(pretrained))
  assert (pretrained / "config.json").read_bytes() == (run / "config.json").read_bytes()
  other = tiny_config()
  other.model.latent_dim = 16
  with pytest.raises(errors.WorkdirError, match="does not fit the config"):
    vqvae_train.restore_state(other, pretrained)
  # A record-only export (an ablation row) copies the record and writes no weights.
  record = export.export(config, str(run), str(pretrained.parent / "record"), weights=False)
  kept = {name for name in export.RECORD_FILES if (run / name).exists()}
  assert {"config.json", "metrics.jsonl"} <= kept
  assert {p.name for p in record.iterdir()} == kept                      # no weights, no figures
  assert all((record / name).read_bytes() == (run / name).read_bytes() for name in kept)


def test_reconstruct_matches_the_evaluation_path_on_a_full_length_recording(
    shipped, fsdd_dataset, tmp_path):
  """A test recording written as an 8192-sample WAV goes through the codec exactly as
  --mode=evaluate reconstructs it from the prepared dataset (scale, padding, STFT, model)."""
  config, _, pretrained = shipped
  test = fsdd_dataset["test"]
  wav = tmp_path / "in.wav"
  sf.write(wav, fsdd_dataset.unscale(test.waveforms[0]), 8000, subtype="FLOAT")
  out = codec.reconstruct_mode(config, str(pretrained), str(wav), str(tmp_path / "out.wav"))
  got, rate = sf.read(out, dtype="float32")
  assert rate == 8000 and got.shape == (8192,)
  state = vqvae_train.restore_state(config, pretrained)
  spec = audio.to_spectrogram(test.waveforms[:1], config.audio)
  want = fsdd_dataset.unscale(audio.to_waveform(vqvae.reconstruct(
      vqvae.make_model(config), state.params, state.codebook.embed, spec, config), config.audio)[0])
  np.testing.assert_allclose(got, np.clip(want, -1, 1), atol=1.5 / 32768)   # 16-bit PCM


def test_any_length_and_rate_in_and_codes_decode_to_the_reconstruction(shipped, tmp_path):
  config, _, pretrained = shipped
  rng = np.random.default_rng(0)
  for n, rate in ((10_403, 8000), (3_000, 16_000)):   # not a multiple of the hop; another rate
    wav = tmp_path / f"{n}.wav"
    sf.write(wav, 0.1 * rng.standard_normal(n), rate)
    recon = codec.reconstruct_mode(config, str(pretrained), str(wav), str(tmp_path / f"r{n}.wav"))
    assert sf.info(recon).frames == n * 8000 // rate and sf.info(recon).samplerate == 8000
  wav = tmp_path / "10403.wav"
  codes_path = codec.encode_mode(config, str(pretrained), str(wav), str(tmp_path / "c.rvqc"))
  model = codec.load_codec(config, str(pretrained))
  codes, length = codec.read_coded(codes_path, model, str(pretrained), config.codec)
  assert codes.shape == (32, 41, 3) and codes.max() < 16 and length == 10_403   # 10496 samples
  np.testing.assert_array_equal(codes, codec.encode(model, codec.read_audio(wav, 8000), 3))
  decoded = codec.decode_mode(config, str(pretrained), str(codes_path), str(tmp_path / "d.wav"))
  np.testing.assert_allclose(sf.read(decoded)[0], sf.read(tmp_path / "r10403.wav")[0],
                             atol=2 / 32768)
  one_level = config.copy_and_resolve_references()
  one_level.codec.levels = 1
  path = codec.encode_mode(one_level, str(pretrained), str(wav), str(tmp_path / "c1.rvqc"))
  assert codec.read_coded(path, model, str(pretrained), config.codec)[0].shape[-1] == 1
  assert path.stat().st_size < codes_path.stat().st_size


def test_bad_inputs_are_one_line_errors_naming_the_file(shipped, tmp_path):
  config, run, pretrained = shipped
  stereo, nan, empty, text = (tmp_path / n for n in ("stereo.wav", "nan.wav", "empty.wav", "a.wav"))
  sf.write(stereo, np.zeros((800, 2)), 8000)
  sf.write(nan, np.full(800, np.nan), 8000, subtype="FLOAT")
  empty.write_bytes(b"")
  text.write_text("not audio")
  # Other containers named .wav: libsndfile would decode them; the codec reads WAV only (README).
  flac, aiff = tmp_path / "flac.wav", tmp_path / "aiff.wav"
  sf.write(flac, np.zeros(800), 8000, format="FLAC")
  sf.write(aiff, np.zeros(800), 8000, format="AIFF")
  truncated = tmp_path / "truncated.wav"
  sf.write(truncated, np.zeros(800), 8000)
  truncated.write_bytes(truncated.read_bytes()[:30])   # a WAV header, then nothing readable
  for path, reason in ((stereo, "2 channels"), (nan, "non-finite"), (empty, "empty"),
                       (text, "not a WAV file .no known audio format"),
                       (flac, "not a WAV file .its content is FLAC"),
                       (aiff, "not a WAV file .its content is AIFF"), (truncated, "unreadable"),
                       (tmp_path / "missing.wav", "no such file")):
    with pytest.raises(errors.UserError, match=reason) as info:
      codec.reconstruct_mode(config, str(pretrained), str(path), str(tmp_path / "o.wav"))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
  with pytest.raises(errors.ConfigError, match="would replace the input"):
    codec.reconstruct_mode(config, str(pretrained), str(stereo), str(stereo))
  with pytest.raises(errors.ConfigError, match="is a folder; give the file to write"):
    codec.reconstruct_mode(config, str(pretrained), str(stereo), str(tmp_path))
  assert sf.info(stereo).channels == 2                      # the input is kept
  with pytest.raises(errors.DataError, match="not a bitstream written by --mode=encode"):
    codec.decode_mode(config, str(pretrained), str(text), str(tmp_path / "o.wav"))
  good = tmp_path / "good.wav"
  sf.write(good, 0.1 * np.ones(2000), 8000)
  model = codec.load_codec(config, str(pretrained))
  samples = codec.read_audio(good, 8000)
  np.savez(tmp_path / "other.npz", codes=codec.encode(model, samples, 3),
           num_samples=len(samples), fingerprint=np.array("0123456789abcdef"))
  with pytest.raises(errors.DataError, match="encoded by other weights"):
    codec.decode_mode(config, str(run), str(tmp_path / "other.npz"), str(tmp_path / "o.wav"))
  for levels in (4, 0):   # 0 is not "unset" (which codes every level): it is refused
    bad_levels = config.copy_and_resolve_references()
    bad_levels.codec.levels = levels
    with pytest.raises(errors.ConfigError, match=f"codec.levels={levels} must be in 1"):
      codec.reconstruct_mode(bad_levels, str(pretrained), str(good), str(tmp_path / "o.wav"))


def test_listening_examples_are_the_codec_reconstructions(fsdd_recordings, tmp_path):
  """rvq_jax.listening writes the original clip and each shipped model's reconstruction (the
  same samples `codec.reconstruct` gives, to 16-bit rounding) and one figure per clip."""
  from rvq_jax import listening  # pylint: disable=g-import-not-at-top
  from rvq_jax.configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.data.data_dir = str(fsdd_recordings)
  shipped = REPO / "pretrained" / "model5"
  written = listening.write_examples([str(shipped)], ["7_theo_3"], config, tmp_path)
  assert sorted(p.name for p in written) == ["7_theo_3_model5.wav", "7_theo_3_original.wav",
                                             "listening_7_theo_3.png"]
  original, rate = sf.read(fsdd_recordings / "7_theo_3.wav", dtype="float32")
  copy, _ = sf.read(tmp_path / "audio" / "7_theo_3_original.wav", dtype="float32")
  np.testing.assert_allclose(copy, original, atol=1 / 32768)
  model = codec.load_codec(config, shipped)
  expected = codec.reconstruct(model, original, model.config.rvq.levels)
  got, rate = sf.read(tmp_path / "audio" / "7_theo_3_model5.wav", dtype="float32")
  assert rate == 8000 and len(got) == len(original)
  np.testing.assert_allclose(got, np.clip(expected, -1, 1), atol=2 / 32768)
  assert (tmp_path / "figures" / "listening_7_theo_3.png").stat().st_size > 10_000


def test_folders_in_and_out_through_the_console_script(shipped, tmp_path, capsys):
  """`rvq-codec` codes a folder (subfolders too) to mirrored names with one model load: the
  decoded files equal each file's own reconstruction; a bad call is one line and exit status 1."""
  _, _, pretrained = shipped
  rng = np.random.default_rng(1)
  inputs = {"a.wav": 5_000, "sub/b.wav": 12_345, "sub/deeper/c.wav": 800}
  for name, n in inputs.items():
    (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
    sf.write(tmp_path / "in" / name, 0.1 * rng.standard_normal(n), 8000)
  (tmp_path / "in" / "notes.txt").write_text("not audio, not read")
  model = str(pretrained)
  assert codec_cli.main(["encode", str(tmp_path / "in"), str(tmp_path / "coded"),
                         f"--model={model}"]) == 0
  assert codec_cli.main(["decode", str(tmp_path / "coded"), str(tmp_path / "out"),
                         f"--model={model}"]) == 0
  for name in inputs:
    assert (tmp_path / "coded" / name).with_suffix(".rvqc").exists()
    single = codec.reconstruct_mode(shipped[0], model, str(tmp_path / "in" / name),
                                    str(tmp_path / "single.wav"))
    np.testing.assert_allclose(sf.read(tmp_path / "out" / name)[0], sf.read(single)[0],
                               atol=2 / 32768)
  assert not (tmp_path / "out" / "notes.wav").exists()
  assert codec_cli.main(["reconstruct", str(tmp_path / "in"), str(tmp_path / "in"),
                         f"--model={model}"]) == 1
  assert codec_cli.main(["decode", str(tmp_path / "in" / "a.wav"), str(tmp_path / "x.wav"),
                         f"--model={model}"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-2].startswith("error: --output would replace the input")
  assert err[-1].startswith("error: ") and "a.wav: not a bitstream" in err[-1]
