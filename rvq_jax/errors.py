"""The project's own error types: problems a user can fix, each message saying what to do.

The front door (`rvq_jax.main`) prints any `UserError` as one line and exits with status 1 (the
traceback only with `--verbosity=1` or `RVQ_JAX_TRACEBACK=1`). Every type also derives from the
built-in exception it refines, so `except ValueError` keeps working for library users. Anything
else that escapes is a bug and keeps its traceback.

Nothing here imports the rest of the package: every layer may raise these.
"""


class UserError(Exception):
  """Something the user can change (a config field, a file, a workdir) caused this."""


class ConfigError(UserError, ValueError):
  """A config field has a value that cannot work; the message names the field."""


class DataError(UserError, ValueError):
  """Input data (a WAV, a folder of recordings, a cache) cannot be used; the message names it."""


class MissingError(UserError, FileNotFoundError):
  """A file or workdir a mode needs is absent; the message says which command creates it."""


class WorkdirError(UserError, RuntimeError):
  """The workdir cannot be used as asked: locked by another run, a resume with an incompatible
  config, or no checkpoint that restores."""


class DownloadError(UserError, RuntimeError):
  """The dataset could not be downloaded; the message says how to use a local copy."""


class DivergedError(UserError, FloatingPointError):
  """Training produced a non-finite loss or state; the last good checkpoint is kept."""


class SetupError(UserError, RuntimeError):
  """The machine or cluster is not set up as the run asks (e.g. multi-host initialisation)."""


class WriteError(UserError, OSError):
  """An output could not be written (a read-only or full disk, a folder where a file goes); what
  was at the path before is left as it was."""
