"""Strict rename/transpose tables: PyTorch state_dict -> Flax params pytree.

A layout (`conversion/layouts/<name>.py`) is a `Table`: rows of (torch_key, flax_path,
transform) plus declared ignorable keys, each with its reason. `apply` fills a target pytree
(shapes from `jax.eval_shape` of the model's init) and stops on the first pass with *every*
problem listed at once, so one run tells the whole story of a mismatched checkpoint:

* missing:     a row's torch key is absent from the checkpoint;
* unexpected:  a checkpoint key no row reads and no ignore pattern covers;
* shape:       a tensor whose shape, after the row's transform, differs from the target's
               (reported in PyTorch's layout: the shape the row expected and the one found);
* unfilled:    a target leaf no row writes (a table bug, reported the same way);
* duplicate:   two rows writing the same target leaf.

Transforms are small objects that know their inverse shape map, so errors can be stated in
the source layout. Several rows may read one torch key (e.g. a fused qkv split three ways).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

Shape = tuple[int, ...]
FlaxPath = tuple[str, ...]


# ----------------------------------------------------------------------------- transforms


@dataclasses.dataclass(frozen=True)
class Identity:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x

    def source_shape(self, target: Shape) -> Shape:
        return tuple(target)


@dataclasses.dataclass(frozen=True)
class Transpose:
    """np.transpose(x, perm): e.g. conv OIHW -> HWIO is (2, 3, 1, 0), linear [out,in] -> [in,out] is (1, 0)."""

    perm: tuple[int, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != len(self.perm):
            raise _SourceShapeError()
        return np.transpose(x, self.perm)

    def source_shape(self, target: Shape) -> Shape:
        inverse = np.argsort(self.perm)
        return tuple(int(target[i]) for i in inverse)


@dataclasses.dataclass(frozen=True)
class Reshape:
    """Reshape to the target's shape (e.g. a [1, N, D] position table stored as [N, D])."""

    source: Shape
    target: Shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if tuple(x.shape) != tuple(self.source):
            raise _SourceShapeError()
        return x.reshape(self.target)

    def source_shape(self, target: Shape) -> Shape:
        return tuple(self.source)


@dataclasses.dataclass(frozen=True)
class Slice:
    """x[start:stop] along `axis` (of the source), e.g. one third of a fused qkv weight."""

    axis: int
    start: int
    stop: int
    parts: int  # how many equal slices the source axis holds, for the inverse shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # A source of the wrong length would still slice to the right shape: refuse it here.
        if x.ndim <= self.axis or x.shape[self.axis] != self.parts * (self.stop - self.start):
            raise _SourceShapeError()
        index = [slice(None)] * x.ndim
        index[self.axis] = slice(self.start, self.stop)
        return x[tuple(index)]

    def source_shape(self, target: Shape) -> Shape:
        shape = list(target)
        shape[self.axis] = shape[self.axis] * self.parts
        return tuple(shape)


@dataclasses.dataclass(frozen=True)
class Compose:
    """Apply `steps` left to right."""

    steps: tuple[Any, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for step in self.steps:
            x = step(x)
        return x

    def source_shape(self, target: Shape) -> Shape:
        for step in reversed(self.steps):
            target = step.source_shape(target)
        return target


@dataclasses.dataclass(frozen=True)
class TakeRow:
    """x[index] of a [rows, ...] table, e.g. one class's row of a class-embedding table."""

    index: int
    rows: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 1 or x.shape[0] != self.rows or not 0 <= self.index < self.rows:
            raise _SourceShapeError()
        return x[self.index]

    def source_shape(self, target: Shape) -> Shape:
        return (self.rows,) + tuple(target)


class _SourceShapeError(Exception):
    """A transform met a source it cannot map; `apply` reports it as a shape problem."""


IDENTITY = Identity()
CONV2D = Transpose((2, 3, 1, 0))  # torch [O, I, kh, kw] -> flax [kh, kw, I, O]
LINEAR = Transpose((1, 0))  # torch [out, in] -> flax [in, out]


# ----------------------------------------------------------------------------- the table


@dataclasses.dataclass(frozen=True)
class Row:
    torch_key: str
    flax_path: FlaxPath
    transform: Any = IDENTITY


@dataclasses.dataclass(frozen=True)
class Table:
    """rows: what goes where; ignore: (fnmatch pattern, why it is safe to drop) pairs."""

    name: str
    rows: tuple[Row, ...]
    ignore: tuple[tuple[str, str], ...] = ()

    def is_ignored(self, key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, pattern) for pattern, _ in self.ignore)


@dataclasses.dataclass(frozen=True)
class Problem:
    kind: str  # missing | unexpected | shape | unfilled | duplicate
    name: str
    expected: Shape | None = None
    found: Shape | None = None

    def __str__(self) -> str:
        shapes = ""
        if self.expected is not None or self.found is not None:
            shapes = f" (expected {self.expected}, found {self.found})"
        return f"{self.kind:<10} {self.name}{shapes}"


class ConversionError(ValueError):
    """Every problem one conversion found, one per line."""

    def __init__(self, table: str, problems: Sequence[Problem]):
        self.problems = list(problems)
        lines = "\n  ".join(str(p) for p in self.problems)
        super().__init__(f"layout {table!r}: {len(self.problems)} problem(s) converting the checkpoint:\n  {lines}")


def flatten_target(tree: Mapping, prefix: FlaxPath = ()) -> dict[FlaxPath, Any]:
    """Leaves of a nested-dict pytree by path; a leaf is anything with `.shape`."""
    out = {}
    for k, v in tree.items():
        path = prefix + (str(k),)
        if hasattr(v, "shape") and not isinstance(v, Mapping):
            out[path] = v
        else:
            out.update(flatten_target(v, path))
    return out


def unflatten(leaves: Mapping[FlaxPath, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in leaves.items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def apply(table: Table, state_dict: Mapping[str, np.ndarray], target: Mapping) -> dict:
    """Fill `target` (a pytree of arrays or jax.ShapeDtypeStruct) from `state_dict` by `table`.

    Returns a nested dict of numpy arrays in the target's dtypes. Raises ConversionError with
    every problem found.
    """
    target_leaves = flatten_target(target)
    problems: list[Problem] = []
    out: dict[FlaxPath, np.ndarray] = {}
    read: set[str] = set()
    for row in table.rows:
        name = "/".join(row.flax_path)
        if row.flax_path not in target_leaves:
            # The table writes where the model has nothing: a table bug, said plainly.
            problems.append(Problem("unfilled", f"table row {row.torch_key} -> {name}: no such target leaf"))
            continue
        if row.flax_path in out:
            problems.append(Problem("duplicate", f"{name} (again from {row.torch_key})"))
            continue
        leaf = target_leaves[row.flax_path]
        expected_src = row.transform.source_shape(tuple(leaf.shape))
        if row.torch_key not in state_dict:
            problems.append(Problem("missing", row.torch_key, expected=expected_src))
            continue
        read.add(row.torch_key)
        value = state_dict[row.torch_key]
        try:
            converted = row.transform(value)
        except _SourceShapeError:
            converted = None
        if converted is None or tuple(converted.shape) != tuple(leaf.shape):
            problems.append(Problem("shape", row.torch_key, expected=expected_src, found=tuple(value.shape)))
            continue
        out[row.flax_path] = np.asarray(converted, dtype=leaf.dtype)
    claimed = {r.torch_key for r in table.rows}
    for key in sorted(set(state_dict) - read):
        if not table.is_ignored(key) and key not in claimed:
            problems.append(Problem("unexpected", key, found=tuple(state_dict[key].shape)))
    written = {r.flax_path for r in table.rows}
    for path in sorted(set(target_leaves) - written):
        problems.append(Problem("unfilled", "/".join(path) + " (no table row writes it)", expected=tuple(target_leaves[path].shape)))
    if problems:
        raise ConversionError(table.name, problems)
    return unflatten(out)


def describe(table: Table) -> str:
    """The table as text, one row a line, for `wm convert --print-table` and reviews."""
    lines = [f"# layout {table.name}: {len(table.rows)} rows"]
    for row in table.rows:
        lines.append(f"{row.torch_key:<32} -> {'/'.join(row.flax_path):<48} {row.transform}")
    for pattern, why in table.ignore:
        lines.append(f"ignored {pattern}: {why}")
    return "\n".join(lines)


def prefixed(prefix: str, state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`{prefix + k: v}`, to put two files (TAESD's encoder and decoder) into one namespace."""
    return {prefix + k: v for k, v in state_dict.items()}


def rows_under(prefix_torch: str, prefix_flax: FlaxPath, rows: Iterable[Row]) -> list[Row]:
    """Re-root rows under a torch key prefix and a flax path prefix (for nested layouts)."""
    return [Row(prefix_torch + r.torch_key, prefix_flax + r.flax_path, r.transform) for r in rows]
