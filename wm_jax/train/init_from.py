"""`--init_from`: start a run's params from an image checkpoint or a saved model.

Sources: a `wm train` workdir (its latest checkpoint's EMA params) or a model directory
written by `wm_jax.model.save` (e.g. a converted DiT). Every source leaf must exist in the
target with the same shape; target leaves the source lacks (the temporal blocks of the world
stage, whose adaLN-Zero gates start at zero so the model starts as the image model) keep their
fresh initialisation. One leaf may grow: a source without `ModelConfig.previous_frame_input`
gives the patch embedding's first input channels, and the previous frame's channels start at
zero, so again the run starts from the source's function. Checked on shapes alone, before
anything is compiled.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from wm_jax.train.sharding import leaf_name

PATCH_KERNEL = "patch_embed/proj/kernel"  # [p, p, input channels, width]


def _widens_patch_inputs(name: str, source_shape, target_shape) -> bool:
    return (name == PATCH_KERNEL and len(source_shape) == len(target_shape) == 4
            and tuple(source_shape[:2]) == tuple(target_shape[:2]) and source_shape[3] == target_shape[3]
            and target_shape[2] == 2 * source_shape[2])


def load(path: str):
    """(description, params as host arrays)."""
    path = os.path.abspath(path)
    if os.path.exists(os.path.join(path, "config.json")):
        from wm_jax import model

        _, params = model.load(path)
        return f"model directory {path}", params
    checkpoints_dir = os.path.join(path, "checkpoints")
    if os.path.isdir(checkpoints_dir):
        from wm_jax.train.checkpoint import Checkpoints

        checkpoints = Checkpoints(checkpoints_dir, async_save=False)
        step = checkpoints.latest_step()
        if step is None:
            raise FileNotFoundError(f"--init_from {path}: the workdir has no checkpoint yet")
        state = checkpoints.restore_unsharded(step)
        checkpoints.close()
        return f"EMA params of {path} at step {step}", state["ema_params"]
    raise FileNotFoundError(
        f"--init_from {path}: neither a model directory (config.json) nor a `wm train` workdir (checkpoints/)"
    )


def check(target_params, source_params) -> tuple[list[str], list[str]]:
    """(copied leaf names, fresh leaf names); raises ValueError on any misfit."""
    target = {leaf_name(p): x.shape for p, x in jax.tree_util.tree_leaves_with_path(target_params)}
    source = {leaf_name(p): np.shape(x) for p, x in jax.tree_util.tree_leaves_with_path(source_params)}
    misfits = [f"{name}: source {source[name]}, target {target[name]}"
               for name in sorted(source.keys() & target.keys())
                if tuple(source[name]) != tuple(target[name]) and not _widens_patch_inputs(name, source[name], target[name])]
    unused = sorted(source.keys() - target.keys())
    if misfits or unused:
        lines = [f"  shape mismatch {m}" for m in misfits[:20]] + [f"  not in the target model: {u}" for u in unused[:20]]
        raise ValueError("--init_from does not fit the model being trained:\n" + "\n".join(lines))
    return sorted(source.keys() & target.keys()), sorted(target.keys() - source.keys())


def merge(target_params, source_params):
    """target with every source leaf copied in, placed with the target leaf's sharding."""
    source = {leaf_name(p): x for p, x in jax.tree_util.tree_leaves_with_path(source_params)}

    def one(path, leaf):
        name = leaf_name(path)
        if name not in source:
            return leaf
        value = np.asarray(source[name], leaf.dtype)
        if value.shape != leaf.shape:  # the patch kernel, widened (checked by `check`)
            value = np.concatenate([value, np.zeros_like(value)], axis=2)
        # make_array_from_callback: each process fills only its own shards (works multi-host).
        return jax.make_array_from_callback(value.shape, leaf.sharding, lambda index: value[index])

    return jax.tree_util.tree_map_with_path(one, target_params)
