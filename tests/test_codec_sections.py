"""The results page's codec part: a model's PESQ-nb at another codec's bit rate, and its table."""

import pytest

from rvq_jax.eval import codec_sections


def _row(codec, setting, kbps, pesq, model=None):
  row = {"codec": codec, "setting": setting, "kbps": kbps, "file_kbps": kbps + 1,
         "pesq_nb": pesq, "stoi": 0.9, "lsd_db": 5.0, "digit_accuracy": 0.95}
  return {**row, "model": model} if model else row


def test_pesq_at_equal_bits_interpolates_in_log_rate_and_never_extrapolates():
  curve = [(16.0, 4.0), (4.0, 3.0)]
  assert codec_sections.pesq_at(curve, 8.0) == pytest.approx(3.5)     # halfway in log rate
  assert codec_sections.pesq_at(curve, 4.0) == pytest.approx(3.0)
  assert codec_sections.pesq_at(curve, 2.0) is None and codec_sections.pesq_at(curve, 20) is None
  record = {"clips": 2, "source": "test split", "seconds": 1.0, "original_digit_accuracy": 1.0,
            "rows": [_row("opus", "8", 8.0, 3.4), _row("speex", "2", 32.0, 4.2),
                     _row("rvq", "1", 4.0, 3.0, "m"), _row("rvq", "2", 16.0, 4.0, "m")]}
  lines = codec_sections.equal_bits(record)
  assert lines[2] == "| opus | 8 | 8.00 | 3.40 | 3.50 (+0.10) |"
  assert lines[3] == "| speex | 2 | 32.00 | 4.20 | outside its range |"
  table = codec_sections.table(record)
  assert table[-1] == "| m | levels 2 | 16.00 | 17.00 | 4.00 | 0.900 | 5.00 | 0.950 |"
