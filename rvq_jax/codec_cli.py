"""`rvq-codec`: the trained codec from a shell, installed with the package (setup.cfg).

  rvq-codec encode      --model=pretrained/model7 in.wav  out.rvqc   [--levels=N]
  rvq-codec decode      --model=pretrained/model7 in.rvqc out.wav
  rvq-codec reconstruct --model=pretrained/model7 in.wav  out.wav    [--levels=N]

INPUT and OUTPUT may be folders: every WAV (or bitstream) inside, subfolders too, is coded to the
same relative name under OUTPUT, with one model load and a progress bar. The model is the one
saved in --model (its config.json); nothing else is needed. It runs the same functions as
`python -m rvq_jax.main --mode=<mode> --workdir=<model> --input=... --output=...`.
"""

from __future__ import annotations

import argparse
import sys

from rvq_jax import cli
from rvq_jax import codec
from rvq_jax import errors
from rvq_jax import run_config


def parse(argv):
  parser = argparse.ArgumentParser(prog="rvq-codec", description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("mode", choices=sorted(codec.MODES), help="what to do")
  parser.add_argument("input", help="a WAV (encode, reconstruct), a bitstream (decode), or a "
                      "folder of them")
  parser.add_argument("output", help="the file to write, or a folder for a folder INPUT")
  parser.add_argument("--model", required=True, help="a trained VQ-VAE: shipped weights "
                      "(pretrained/model7) or a training workdir")
  parser.add_argument("--levels", type=int, default=None, help="encode / reconstruct: code "
                      "with the first N quantizer levels (a lower bit rate); default: all")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse(sys.argv[1:] if argv is None else argv)
  try:
    config = run_config.saved_config(args.model)
    if config.task != "vqvae":
      raise errors.ConfigError(f"--model={args.model} holds a {config.task} run, not a codec "
                               "(a VQ-VAE).")
    config.codec.levels = args.levels
    codec.MODES[args.mode](config, args.model, args.input, args.output)
  except errors.UserError as e:
    if cli.show_tracebacks():
      raise
    print(f"error: {cli.plain_message(e)}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
