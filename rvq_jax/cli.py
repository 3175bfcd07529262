"""What the front door (`rvq_jax.main`) does around a command: one-line messages for the errors a
user can fix (`rvq_jax.errors.UserError`, and a --config override that does not apply), the
traceback only with `--verbosity=1` or `RVQ_JAX_TRACEBACK=1`."""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

from rvq_jax import errors

TRACEBACK_ENV = "RVQ_JAX_TRACEBACK"


def show_tracebacks() -> bool:
  return (os.environ.get(TRACEBACK_ENV, "0").lower() in ("1", "true", "yes")
          or (flags.FLAGS.is_parsed() and flags.FLAGS.verbosity >= 1))


def plain_message(error: BaseException) -> str:
  """The readable text of an error, on one line: unwraps exceptions wrapped as arguments (as
  ml_collections wraps a KeyError in an AttributeError, whose str() is an escaped repr)."""
  message = error
  while isinstance(message, BaseException) and message.args:
    message = message.args[0]
  text = message if isinstance(message, str) else str(error)
  if isinstance(error, (AttributeError, KeyError)) and text.startswith("'"):
    text = "no field " + text   # ml_collections: "'level'\nDid you mean "levels" ...?"
  return " ".join(line.strip() for line in text.splitlines() if line.strip())


def parse_flags(argv):
  """absl's parser, with config-override errors (a misspelt or mistyped --config.field) printed as
  one readable line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"FATAL Flags parsing error: {plain_message(e)}\n"
             "Pass --helpshort or --helpfull to see help on flags.")
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    if os.environ.get(TRACEBACK_ENV):
      raise
    sys.exit(f"error: a --config override does not apply: {plain_message(e)}")


def run(main) -> None:
  """`app.run(main)`; the project's own errors print as one line `error: ...`, exit status 1."""
  try:
    app.run(main, flags_parser=parse_flags)
  except errors.UserError as e:
    if show_tracebacks():
      raise
    sys.exit(f"error: {plain_message(e)}")
