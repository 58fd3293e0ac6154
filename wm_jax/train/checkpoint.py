"""Checkpoints: an orbax `CheckpointManager` whose every step holds one composite item.

    WORKDIR/checkpoints/<step>/state    params, EMA params, optimizer state, step (sharded arrays)
                              /data     the Grain iterator state (one file per process)
                              /config   {"gin": the config text, ...} (JSON)

Saves are asynchronous (arrays are copied to host, then written in a background thread) and
atomic (orbax writes a temporary directory and renames it when complete, so a crash mid-save
leaves the previous checkpoint as the latest). Retention: the last `keep_last` plus every
`keep_every`-th step. Restore goes through abstract shapes *with shardings*, so each device
reads only its own shard. Nothing here knows about world models: `wm train-ae` uses it too.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class Checkpoints:
    def __init__(self, directory: str, *, keep_last: int = 3, keep_every: int | None = None, async_save: bool = True):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep_last, keep_period=keep_every, enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,  # remove what a killed save left half-written
        )
        self.manager = ocp.CheckpointManager(
            self.directory, options=options,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "data": grain.checkpoint.CheckpointHandler(),
                "config": ocp.JsonCheckpointHandler(),
            },
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: Any, data_iterator=None, config: dict | None = None) -> None:
        items = {"state": ocp.args.StandardSave(state), "config": ocp.args.JsonSave(dict(config or {}))}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        # force: the loop decides when to save; orbax's own interval policy stays out of it.
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)

    def restore(self, step: int, abstract_state: Any, data_iterator=None) -> tuple[Any, dict]:
        """(state, config) at `step`. abstract_state: ShapeDtypeStructs carrying shardings.

        The data iterator, if given, is moved to its saved position in place.
        """
        items = {"state": ocp.args.StandardRestore(abstract_state), "config": ocp.args.JsonRestore()}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        return restored["state"], restored["config"]

    def read_config(self, step: int) -> dict:
        return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

    def restore_unsharded(self, step: int) -> Any:
        """The state item as saved, without a target (for --init_from of another run)."""
        return self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def abstract_with_shardings(tree, shardings):
    """ShapeDtypeStructs carrying the shardings restore should produce."""
    return jax.tree_util.tree_map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )
