"""Reading a jax.profiler trace of a compiled XLA:CPU step: time per operation, and what each
operation is (from the compiled HLO text). Shared by profile_step.py and flow_step.py."""

import collections
import gzip
import json
import pathlib
import re


def top_ops(trace_dir: pathlib.Path, num_steps: int):
  """{op name: ms per step} from the Perfetto trace (complete events on XLA:CPU's threads)."""
  path = next(trace_dir.rglob("perfetto_trace.json.gz"))
  with gzip.open(path) as f:
    events = json.load(f)
  events = events["traceEvents"] if isinstance(events, dict) else events
  total = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and "dur" in e:
      total[e["name"]] += e["dur"] / 1e3 / num_steps
  return total


def describe(hlo_text: str):
  """{instruction name: 'shape what (source op)'} from compiled HLO text, for the trace's names."""
  computations = dict(re.findall(r"^%?([\w.\-]+) [^\n]*\{\n(.*?)\n\}", hlo_text, re.M | re.S))
  out = {}
  for m in re.finditer(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w\-]+)\((.*)$", hlo_text, re.M):
    name, shape, kind, rest = m.groups()
    what = kind
    called = re.search(r"calls=%?([\w.\-]+)", rest)
    if called and called.group(1) in computations:
      body = computations[called.group(1)]
      kinds = re.findall(r"= \S+ (convolution|dot|reduce|scatter|gather|sort)\(", body)
      what = "+".join(sorted(set(kinds))) or "elementwise"
      rest = body + rest
    source = re.search(r'op_name="([^"]*)"', rest)
    out[name] = f"{shape} {what} ({source.group(1)[-90:] if source else '-'})"
  return out
