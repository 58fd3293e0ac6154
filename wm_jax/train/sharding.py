"""Scaling with JAX's own engine: a `Mesh` with `data` and `fsdp` axes, params sharded by
logical-axis rules, the batch sharded over both axes, and multi-host initialisation.

Every leaf of a state tree (params, EMA params, and the optimiser's moments, whose paths end
in the same names) gets logical axis names from `LOGICAL_AXES` (a regex on the leaf's path);
`RULES` maps logical names to mesh axes. Only the model width ("embed") is sharded, over
`fsdp`: that is FSDP (ZeRO-3) — each device keeps 1/fsdp of every large matrix and XLA inserts
the all-gathers and reduce-scatters. The batch is split over `data` x `fsdp` devices, as FSDP
expects (every device sees different examples).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

log = logging.getLogger(__name__)

AXES = ("data", "fsdp")
BATCH = ("data", "fsdp")  # mesh axes the leading batch dimension is split over

# (regex on "a/b/c" leaf path, logical names per dimension). First match wins; leaves that
# match nothing are replicated. Dense kernels are [in, out]; the patch conv is [p, p, C, D].
LOGICAL_AXES: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    (r"patch_embed/proj/kernel$", (None, None, "channels", "embed")),
    (r"(adaLN/linear|attn/qkv|mlp/fc1)/kernel$", ("embed", "hidden")),
    (r"(/proj|mlp/fc2|t_embed/fc2)/kernel$", ("hidden", "embed")),
    (r"t_embed/fc1/kernel$", ("frequencies", "embed")),
    (r"action_embed/kernel$", ("actions", "embed")),
    (r"final/linear/kernel$", ("embed", "patch_out")),
)
RULES: tuple[tuple[str, str | None], ...] = (
    ("embed", "fsdp"),
    ("hidden", None),
    ("channels", None),
    ("frequencies", None),
    ("actions", None),
    ("patch_out", None),
)


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Devices per mesh axis; -1 means "all the devices the other axis leaves"."""

    data: int = -1
    fsdp: int = 1


def make_mesh(config: MeshConfig, devices: Sequence[jax.Device] | None = None) -> Mesh:
    devices = list(jax.devices() if devices is None else devices)
    data, fsdp = config.data, config.fsdp
    if data == -1 and fsdp == -1:
        raise ValueError("at most one of Mesh.data / Mesh.fsdp may be -1")
    if data == -1:
        data = len(devices) // max(fsdp, 1)
    if fsdp == -1:
        fsdp = len(devices) // max(data, 1)
    if data * fsdp != len(devices) or data < 1 or fsdp < 1:
        raise ValueError(f"mesh data={config.data} x fsdp={config.fsdp} does not fit {len(devices)} devices")
    # Auto axes: XLA's partitioner places intermediates (jax.make_mesh defaults to Explicit
    # axes, which would ask every reshape in the model for an output sharding).
    auto = (jax.sharding.AxisType.Auto,) * len(AXES)
    return jax.make_mesh((data, fsdp), AXES, axis_types=auto, devices=devices)


def leaf_name(path) -> str:
    return jax.tree_util.keystr(path, simple=True, separator="/")


def logical_axes(name: str, ndim: int, table=LOGICAL_AXES) -> tuple[str | None, ...]:
    for pattern, names in table:
        if re.search(pattern, name):
            if len(names) != ndim:
                raise ValueError(f"sharding rule {pattern!r} names {len(names)} axes; {name} has {ndim}")
            return names
    return (None,) * ndim


def tree_shardings(tree, mesh: Mesh, table=LOGICAL_AXES, rules=RULES):
    """NamedSharding for every leaf of `tree` (arrays or ShapeDtypeStructs), from the rules.

    A dimension the mesh axis does not divide is replicated instead (logged), so odd widths
    still run; the 516M configuration divides evenly.
    """

    def one(path, leaf):
        shape = tuple(getattr(leaf, "shape", ()))
        spec = list(nn.logical_to_mesh_axes(logical_axes(leaf_name(path), len(shape), table), rules))
        for dim, axis in enumerate(spec):
            if axis is not None and shape[dim] % mesh.shape[axis]:
                log.info("replicating dim %d of %s (%d not divisible by %s=%d)", dim, leaf_name(path), shape[dim], axis, mesh.shape[axis])
                spec[dim] = None
        return NamedSharding(mesh, PartitionSpec(*spec))

    return jax.tree_util.tree_map_with_path(one, tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(BATCH))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def to_host(x):
    """A replicated jax.Array -> numpy on this host (any local copy is the whole value, so it
    works on every process); anything else passes through."""
    return jax.device_get(x.addressable_data(0)) if isinstance(x, jax.Array) else x


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
    """This process's rows -> global jax.Arrays sharded over the batch axes."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}


def maybe_initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                                 process_id: int | None = None) -> bool:
    """`jax.distributed.initialize` when flags or the environment describe several processes.

    Flags win over JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID. On a cluster
    JAX detects by itself (SLURM, Cloud TPU), set WM_DISTRIBUTED=1 to call it without arguments.
    Returns whether it initialised.
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes or _int_env("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _int_env("JAX_PROCESS_ID")
    if coordinator and num_processes and num_processes > 1:
        jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
        return True
    if os.environ.get("WM_DISTRIBUTED") == "1":
        jax.distributed.initialize()
        return True
    return False


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None
