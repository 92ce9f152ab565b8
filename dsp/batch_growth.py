"""Growing a batch object (masker, detector, filter bank) to more calls in place.

A media plane that starts a batch small and grows it as calls arrive keeps one
`process` per tick for all of them (its fixed cost is paid once) without
holding rows for calls it never gets.  Growing keeps every existing call's state
exactly: its next output is what it would have been, and the new rows start as
in a batch built at the larger size.

`grow_state(obj, fresh, old_n)` takes each attribute of `obj` (built for old_n
calls) and `fresh` (the same class, built with the same settings for more):

- an array with an axis of old_n calls in `obj` and of the new count in `fresh`:
  the old rows, then `fresh`'s new rows (its initial values);
- any other array: `fresh`'s (constants, some derived from the call count);
- a list with one item per call: the old items, then `fresh`'s new ones;
- a tuple: item by item, as above;
- a dict: `fresh`'s (caches and scratch buffers, rebuilt on use);
- `n_calls`: `fresh`'s;
- an object of a class in `nested`: grown the same way;
- anything else (counters, positions, settings, sets of call indices): `obj`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def grow_state(obj: Any, fresh: Any, old_n: int, nested: tuple[type, ...] = ()) -> None:
    """Give `obj` the call count of `fresh`, keeping its calls' state (see module doc)."""
    new_n = fresh.n_calls
    for name, new in vars(fresh).items():
        if name == "n_calls":
            setattr(obj, name, new)
            continue
        setattr(obj, name, _grown(getattr(obj, name), new, old_n, new_n, nested))


def _grown(old: Any, new: Any, old_n: int, new_n: int, nested: tuple[type, ...]) -> Any:
    if isinstance(old, np.ndarray) and isinstance(new, np.ndarray):
        return _grown_array(old, new, old_n, new_n)
    if isinstance(old, list) and isinstance(new, list):
        return old + new[old_n:] if len(old) == old_n and len(new) == new_n else old
    if isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new):
        return tuple(_grown(o, f, old_n, new_n, nested) for o, f in zip(old, new, strict=True))
    if isinstance(new, dict):
        return new
    if nested and isinstance(old, nested) and type(new) is type(old):
        grow_state(old, new, old_n, nested)
        return old
    return old


def _grown_array(old: np.ndarray, new: np.ndarray, old_n: int, new_n: int) -> np.ndarray:
    axes = [
        ax
        for ax in range(min(old.ndim, new.ndim))
        if old.shape[ax] == old_n and new.shape[ax] == new_n
    ]
    if old.ndim != new.ndim or not axes:
        return new
    ax = axes[0]
    if all(n == o for i, (n, o) in enumerate(zip(new.shape, old.shape, strict=True)) if i != ax):
        fill = np.take(new, np.arange(old_n, new_n), axis=ax)
    else:  # other axes differ (a leftover of another length): new rows start empty
        shape = list(old.shape)
        shape[ax] = new_n - old_n
        fill = np.zeros(shape, old.dtype)
    return np.concatenate([old, fill.astype(old.dtype, copy=False)], axis=ax)
