"""Checkpoints: an orbax `CheckpointManager` whose every step holds one composite item.

    WORKDIR/checkpoints/<step>/state    params, EMA params, optimizer state, step (sharded arrays)
                              /data     the Grain iterator state (one file per process)
                              /config   {"gin": the config text, ...} (JSON)

Saves are asynchronous (arrays are copied to host, then written in a background thread) and
atomic (orbax writes a temporary directory and renames it when complete, so a crash mid-save
leaves the previous checkpoint as the latest). Retention: the last `keep_last` plus every
`keep_every`-th step. Restore goes through abstract shapes *with shardings*, so each device
reads only its own shard. Nothing here knows about world models: `wm train-ae` uses it too.

A checkpoint damaged after it was committed (a disk fault, a copy cut short: a truncated array
file, an empty `_METADATA`, an empty iterator state) does not stop a resume: `restore_newest_intact`
tries the steps newest first, and once one restores, every newer one that failed (where the same
code and target succeeded on an older step, so the files are at fault) is moved aside to
`checkpoints.broken/<step>` (never deleted) with one warning line saying why.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
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

    def restore_newest_intact(self, abstract_state: Any, data_iterator=None) -> tuple[int, Any] | None:
        """(step, state) of the newest checkpoint that restores, or None when there is none.

        Newer steps that failed are moved aside (see the module docstring). If no step restores,
        nothing is moved and a ValueError names each step and its fault.
        """
        failed: list[tuple[int, str]] = []
        for step in sorted(self.all_steps(), reverse=True):
            try:
                state, _ = self.restore(step, abstract_state, data_iterator)
            except Exception as error:  # TensorStore raises bare Exceptions; orbax, JSON errors
                failed.append((step, describe_fault(os.path.join(self.directory, str(step)), error)))
                continue
            for broken, why in failed:
                moved = self._move_aside(broken)
                log.warning("checkpoint step %d is broken (%s): moved to %s; resuming from step %d", broken, why, moved, step)
            return step, state
        if failed:
            raise ValueError(f"no checkpoint in {self.directory} restores: "
                             + "; ".join(f"step {step}: {why}" for step, why in failed))
        return None

    def _move_aside(self, step: int) -> str:
        """checkpoints/<step> -> checkpoints.broken/<step> (a new name if taken); process 0 moves."""
        target = os.path.join(self.directory + ".broken", str(step))
        n = 1
        while os.path.exists(target):
            target, n = os.path.join(self.directory + ".broken", f"{step}.{n}"), n + 1
        if jax.process_index() == 0:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(os.path.join(self.directory, str(step)), target)
        self.manager.reload()
        return target

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


def describe_fault(step_dir: str, error: BaseException) -> str:
    """Why a step failed to restore, in one line: the first metadata or iterator-state file that
    is empty or not JSON, else the error's first line."""
    for path in sorted(glob.glob(os.path.join(step_dir, "**", "*"), recursive=True)):
        name = os.path.basename(path)
        if not os.path.isfile(path) or not (name.startswith("_") and "METADATA" in name or name.endswith(".json") or name == "metadata"):
            continue
        relative = os.path.relpath(path, step_dir)
        if os.path.getsize(path) == 0:
            return f"{relative} is empty"
        try:
            with open(path) as f:
                json.load(f)
        except (ValueError, UnicodeDecodeError):
            return f"{relative} is not valid JSON"
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line[:200]}"
