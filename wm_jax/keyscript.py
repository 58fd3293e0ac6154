"""Key scripts: the keys held for each generated frame of a scripted rollout, as text or JSONL.

Text (`--keys`): frames separated by commas and/or whitespace. A frame is keys joined with "+";
"_" (or an empty item between two commas) means no keys; "*N" repeats a frame N times.

    "w,w,a,,d"            5 frames: w, w, a, (none), d
    "W*10 A*5 _*3"        10 frames of w, 5 of a, 3 with no keys
    "w+shift*4, space"    4 frames of w and shift held together, then one of space

JSONL (`--actions FILE`): one line per frame, either a list of key names `["w", "shift"]` or an
object `{"keys": ["w"], "repeat": 3}`; blank lines are skipped.

Frame t of the script is action[t] of generated frame t+1 after the start image (frame 0),
i.e. the keys held while that frame is produced, as the alignment contract in `actions` says.
Key names are canonicalised (`ArrowUp` -> up, `KeyW` -> w) and must be in `actions.KEYS`.
"""

from __future__ import annotations

import json
import re

from wm_jax import actions

NO_KEYS = "_"
MAX_REPEAT = 100_000
_ITEM = re.compile(r"^(?P<keys>[^*]*?)\s*(?:\*\s*(?P<repeat>\d+))?$")


def check_key(name: str) -> str:
    """The canonical name of a key, or KeyError listing the known ones."""
    canonical = actions.canonical(name.strip())
    if canonical not in actions.KEYS:
        raise KeyError(f"unknown key {name!r}; known keys: {', '.join(actions.KEYS)}")
    return canonical


def _frame(spec: str, where: str) -> tuple[str, ...]:
    spec = spec.strip()
    if spec in ("", NO_KEYS):
        return ()
    keys = []
    for part in spec.split("+"):
        if not part.strip():
            raise ValueError(f"{where}: empty key name in {spec!r} (join keys with '+', e.g. 'w+shift')")
        keys.append(check_key(part))
    return tuple(dict.fromkeys(keys))  # ordered, without duplicates


def parse(text: str) -> list[tuple[str, ...]]:
    """A text key script -> one tuple of canonical key names per frame."""
    frames: list[tuple[str, ...]] = []
    for i, item in enumerate(text.split(",")):
        # Within a comma-separated item, whitespace separates frames ("W*10 A*5").
        parts = item.split() or [""]
        for part in parts:
            match = _ITEM.match(part)
            if not match:
                raise ValueError(f"key script item {i + 1} ({part!r}): expected KEYS or KEYS*N")
            repeat = int(match.group("repeat") or 1)
            if not 0 < repeat <= MAX_REPEAT:
                raise ValueError(f"key script item {i + 1} ({part!r}): repeat must be in 1..{MAX_REPEAT}")
            frames.extend([_frame(match.group("keys"), f"key script item {i + 1}")] * repeat)
    if text.strip() == "":
        return []
    return frames


def parse_jsonl(text: str, source: str = "actions file") -> list[tuple[str, ...]]:
    """JSONL key script -> one tuple of canonical key names per frame."""
    frames: list[tuple[str, ...]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not JSON ({error.msg})") from None
        repeat = 1
        if isinstance(entry, dict):
            repeat = entry.get("repeat", 1)
            entry = entry.get("keys")
            if not isinstance(repeat, int) or not 0 < repeat <= MAX_REPEAT:
                raise ValueError(f"{where}: 'repeat' must be an integer in 1..{MAX_REPEAT}")
        if not isinstance(entry, list) or not all(isinstance(k, str) for k in entry):
            raise ValueError(f'{where}: expected a list of key names like ["w", "shift"] or {{"keys": [...], "repeat": N}}')
        keys = tuple(dict.fromkeys(check_key(k) for k in entry))
        frames.extend([keys] * repeat)
    return frames


def format_frames(frames: list[tuple[str, ...]]) -> str:
    """The shortest text script for `frames` (runs collapsed with *N): the inverse of `parse`."""
    out: list[str] = []
    i = 0
    while i < len(frames):
        j = i
        while j < len(frames) and frames[j] == frames[i]:
            j += 1
        name = "+".join(frames[i]) or NO_KEYS
        out.append(name if j - i == 1 else f"{name}*{j - i}")
        i = j
    return " ".join(out)
