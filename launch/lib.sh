# shellcheck shell=bash
# Shared by the launch scripts: `run CMD...` prints the command (shell-quoted, prefixed "+ ") and
# runs it unless DRY_RUN=1 (set by --dry-run).

DRY_RUN="${DRY_RUN:-0}"

run() {
  local line
  printf -v line ' %q' "$@"
  printf '+%s\n' "${line}"   # one write, so concurrent runs do not interleave
  if [[ "${DRY_RUN}" != 1 ]]; then
    "$@"
  fi
}

# Strips --dry-run from the arguments (sets DRY_RUN=1); the rest are left in ARGS.
parse_dry_run() {
  ARGS=()
  local arg
  for arg in "$@"; do
    if [[ "${arg}" == --dry-run ]]; then
      DRY_RUN=1
    else
      ARGS+=("${arg}")
    fi
  done
}

die() {
  echo "error: $*" >&2
  exit 2
}
