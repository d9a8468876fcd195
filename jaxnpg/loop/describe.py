"""Algorithm settings as JSON: what a sweep's manifest records of its algorithm.

:func:`describe_algorithm` turns an algorithm's settings into JSON values that are
equal exactly when the settings are, in every process, so a stored sweep can refuse
to be resumed with another algorithm.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import types

import jax
import numpy as np

from jaxnpg.loop.algorithms import get_algorithm


def describe_algorithm(algorithm) -> tuple[str, dict]:
  """``(name, options)``: an algorithm's settings as JSON-able values.

  The settings are a dataclass's fields (the built-in algorithms, and the
  natural form of a user's), else the instance's attributes (``vars``; none for
  an object whose settings are all class attributes). Scalars are kept as they
  are. Callables (an optax optimizer, a step-size schedule) are described by
  their qualified name, a digest of their bytecode and constants, and,
  recursively, the values they close over; so equal settings give equal
  descriptions in every process, and ``optax.adam(0.1)`` differs from
  ``optax.adam(0.2)``.

  Raises:
    ValueError: a setting holds something that cannot be described (e.g. a
      closure over a large array).

  Example:
    >>> import jaxnpg
    >>> from jaxnpg.loop.describe import describe_algorithm
    >>> describe_algorithm(jaxnpg.SampledNPG(num_samples=8))
    ('sampled_npg', {'num_samples': 8, 'explore': 0.0, 'schedule': None})
  """
  algorithm = get_algorithm(algorithm)
  if dataclasses.is_dataclass(algorithm):
    settings = [(f.name, getattr(algorithm, f.name))
                for f in dataclasses.fields(algorithm)]
  elif hasattr(algorithm, "__dict__"):
    settings = sorted(vars(algorithm).items())
  else:
    raise ValueError(
        f"The {algorithm.name} algorithm ({type(algorithm).__name__}) has no "
        "settings to write to a sweep manifest (neither dataclass fields nor "
        "instance attributes); make it a frozen dataclass.")
  options = {}
  for key, value in settings:
    try:
      options[key] = _describe(value, set(), 0)
    except ValueError as e:
      raise ValueError(
          f"The {algorithm.name} setting `{key}` cannot be written to a "
          f"sweep manifest: it holds {e}. Use settings made of numbers, optax "
          "transformations and plain functions.") from None
  return algorithm.name, options


_MAX_DEPTH = 40


def _describe(value, seen, depth):
  if depth > _MAX_DEPTH:
    raise ValueError("nested too deeply")
  if value is None or isinstance(value, (bool, str)):
    return value
  if isinstance(value, int):
    return int(value)
  if isinstance(value, float):
    return value if math.isfinite(value) else repr(value)
  if isinstance(value, (np.generic, np.ndarray, jax.Array)):
    arr = np.asarray(value)
    if arr.dtype == object or arr.size > 64:
      raise ValueError(f"an array of shape {arr.shape}")
    return {"array": _describe(arr.tolist(), seen, depth + 1),
            "dtype": str(arr.dtype)}
  if isinstance(value, (np.dtype, type)):
    return {"type": getattr(value, "__qualname__", str(value))}
  if id(value) in seen:
    return {"recursive": getattr(value, "__qualname__", type(value).__name__)}
  seen = seen | {id(value)}
  if isinstance(value, types.FunctionType):
    code = value.__code__
    return {"function": f"{value.__module__}.{value.__qualname__}",
            "code": _code_digest(code),
            "defaults": _describe(value.__defaults__, seen, depth + 1),
            "kwdefaults": _describe(value.__kwdefaults__, seen, depth + 1),
            "closure": [_describe(_cell(c), seen, depth + 1)
                        for c in (value.__closure__ or ())]}
  if isinstance(value, functools.partial):
    return {"partial": _describe(value.func, seen, depth + 1),
            "args": _describe(value.args, seen, depth + 1),
            "keywords": _describe(value.keywords, seen, depth + 1)}
  if isinstance(value, tuple) and hasattr(value, "_fields"):   # NamedTuple
    return {"type": type(value).__qualname__,
            "fields": {k: _describe(v, seen, depth + 1)
                       for k, v in zip(value._fields, value)}}
  if isinstance(value, (tuple, list)):
    return [_describe(v, seen, depth + 1) for v in value]
  if isinstance(value, dict):
    return {str(k): _describe(v, seen, depth + 1) for k, v in value.items()}
  if dataclasses.is_dataclass(value):
    return {"type": type(value).__qualname__,
            "fields": {f.name: _describe(getattr(value, f.name), seen, depth + 1)
                       for f in dataclasses.fields(value)}}
  if callable(value) and hasattr(value, "__qualname__"):
    # A module-level callable (a builtin, a jitted jax.numpy function): its name.
    return {"callable": f"{getattr(value, '__module__', '')}.{value.__qualname__}"}
  raise ValueError(f"a {type(value).__name__}")


def _cell(cell):
  try:
    return cell.cell_contents
  except ValueError:  # a cell not yet filled (a name bound after the closure)
    return "<empty cell>"


def _code_digest(code) -> str:
  h = hashlib.sha256()
  h.update(code.co_code)
  h.update(repr(code.co_names).encode())
  for const in code.co_consts:
    if hasattr(const, "co_code"):
      h.update(_code_digest(const).encode())
    elif isinstance(const, frozenset):   # repr order follows the hash seed
      h.update(repr(sorted(map(repr, const))).encode())
    else:
      h.update(repr(const).encode())
  return h.hexdigest()[:16]
