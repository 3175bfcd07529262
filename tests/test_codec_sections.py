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


def test_rate_at_inverts_pesq_at_and_bd_rate_recovers_a_constant_rate_factor():
  opus = [(4.0, 2.8), (8.0, 3.6), (16.0, 4.1), (24.0, 4.3)]
  for kbps in (5.0, 11.0, 20.0):   # the inverse of pesq_at along the same curve
    assert codec_sections.rate_at(opus, codec_sections.pesq_at(opus, kbps)) == pytest.approx(kbps)
  assert codec_sections.rate_at(opus, 4.4) is None and codec_sections.rate_at(opus, 2.0) is None
  # A curve needing 30% more bits for every quality, on other rates and with a point that is
  # worse than a cheaper one (it never sets the rate for a quality).
  ours = [(1.3 * k, q) for k, q in opus] + [(40.0, 4.25)]
  delta, lo, hi = codec_sections.bd_rate(ours, opus)
  assert delta == pytest.approx(0.3) and (lo, hi) == (2.8, 4.3)
  assert codec_sections.bd_rate(opus, ours)[0] == pytest.approx(1 / 1.3 - 1)
  assert codec_sections.bd_rate([(1.0, 1.0), (2.0, 2.0)], opus) is None   # no shared range
  record = {"rows": [_row("opus", str(k), k, q) for k, q in opus]
            + [_row("rvq", str(i), k, q, "m") for i, (k, q) in enumerate(ours)]}
  lines = codec_sections.equal_quality(record)
  assert lines[0] == "| PESQ-nb | opus: kbit/s | m: kbit/s |"
  assert lines[4] == "| 3.8 | 10.56 | 13.72 |"        # 8 * 2 ** 0.4, and 1.3 times that
  assert lines[-1] == "| m | +30% (PESQ-nb 2.80-4.30) |"
