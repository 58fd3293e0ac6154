"""The named key vocabulary every source, model and player shares.

An action is one multi-hot float vector per frame over `VOCAB`: the keys held down
between frame t-1 and frame t (see `align`). The last entry, `UNKNOWN`, is a pseudo-key:
a frame recorded without action data (plain video) sets it alone, and the same vector is
the classifier-free-guidance null. Frame 0 of an episode gets `no_keys()`.

A model may declare another action space (an imported Oasis model has 25 dims); the player
then maps keys by name with `ActionSpace.encode`. A space may also hold continuous entries
(`Axis`: Oasis' camera pitch and yaw), each driven by two keys that set it to -amount / +amount
while held, so a keyboard turns the camera by a fixed amount a frame.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

VOCAB_VERSION = 1

KEYS: tuple[str, ...] = (
    "w", "a", "s", "d",
    "up", "down", "left", "right",
    "space", "shift", "ctrl", "alt", "tab", "enter", "escape",
    "e", "q", "r", "f", "c", "x", "z",
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "0",
    "mouse_left", "mouse_right",
)
UNKNOWN = "<unknown>"
VOCAB: tuple[str, ...] = KEYS + (UNKNOWN,)
NUM_ACTIONS = len(VOCAB)

# Browser `KeyboardEvent.key` spellings that differ from ours.
_ALIASES = {
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
    " ": "space", "spacebar": "space", "control": "ctrl", "esc": "escape", "return": "enter",
}


@dataclasses.dataclass(frozen=True)
class Axis:
    """A continuous entry of an action space driven by two keys: `negative` held sets it to
    -amount, `positive` held to +amount, both or neither to 0 (e.g. Oasis' camera yaw: left and
    right arrows). The entry itself is not a key one presses."""

    entry: str
    negative: str
    positive: str
    amount: float

    def value(self, pressed: set[str]) -> float:
        return self.amount * ((self.positive in pressed) - (self.negative in pressed))


@dataclasses.dataclass(frozen=True)
class ActionSpace:
    """An ordered set of named entries; `UNKNOWN`, if present, marks action-free frames.

    Each entry is a key (1 while held) unless an `Axis` in `axes` drives it (continuous).
    """

    names: tuple[str, ...] = VOCAB
    axes: tuple[Axis, ...] = ()

    def __post_init__(self):
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"action space has duplicate key names: {self.names}")
        axis_keys = [k for a in self.axes for k in (a.negative, a.positive)]
        for axis in self.axes:
            if axis.entry not in self.names:
                raise ValueError(f"axis {axis.entry!r} is not an entry of the action space {self.names}")
            if not axis.amount > 0:
                raise ValueError(f"axis {axis.entry!r}: amount must be > 0, got {axis.amount}")
        clash = sorted({k for k in axis_keys if k in self.names or axis_keys.count(k) > 1})
        if clash or len({a.entry for a in self.axes}) != len(self.axes):
            raise ValueError(f"axis keys must be distinct and not entries of the space; clashing: {clash or 'an entry driven twice'}")

    @property
    def keys(self) -> tuple[str, ...]:
        """What a player presses: every key entry (not UNKNOWN, not an axis), then each axis' two keys."""
        driven = {a.entry for a in self.axes}
        plain = tuple(n for n in self.names if n not in driven and n != UNKNOWN)
        return plain + tuple(k for a in self.axes for k in (a.negative, a.positive))

    def meanings(self) -> tuple[tuple[str, str], ...]:
        """(key, what it does) for `keys`: "" for a plain key, e.g. "camera_yaw +0.25" for an axis key."""
        said = {a.negative: f"{a.entry} -{a.amount:g}" for a in self.axes}
        said.update({a.positive: f"{a.entry} +{a.amount:g}" for a in self.axes})
        return tuple((k, said.get(k, "")) for k in self.keys)

    def knows(self, key: str) -> bool:
        """Whether pressing `key` does something in this space."""
        return canonical(key) in self.keys

    @property
    def size(self) -> int:
        return len(self.names)

    def index(self, key: str) -> int:
        name = canonical(key)
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"key {key!r} is not in this action space; known keys: {', '.join(self.names)}") from None

    def encode(self, pressed: Iterable[str], *, strict: bool = False) -> np.ndarray:
        """Multi-hot vector for the set of pressed keys; unmapped keys are ignored unless strict."""
        vector = np.zeros((self.size,), np.float32)
        held = {canonical(key) for key in pressed}
        known = set(self.keys) | ({UNKNOWN} & set(self.names))
        for key in pressed:
            name = canonical(key)
            if name in known and name in self.names:
                vector[self.names.index(name)] = 1.0
            elif strict and name not in known:
                raise KeyError(f"key {key!r} is not in this action space; known keys: {', '.join(sorted(known))}")
        for axis in self.axes:
            vector[self.names.index(axis.entry)] = axis.value(held)
        return vector

    def decode(self, vector: Sequence[float]) -> list[str]:
        vector = np.asarray(vector)
        self.check(vector)
        driven = {a.entry: a for a in self.axes}
        held = [name for name, value in zip(self.names, vector) if value > 0.5 and name not in driven]
        for entry, axis in driven.items():
            value = float(vector[self.names.index(entry)])
            if abs(value) >= axis.amount / 2:
                held.append(axis.positive if value > 0 else axis.negative)
        return held

    def no_keys(self) -> np.ndarray:
        return np.zeros((self.size,), np.float32)

    def unknown(self) -> np.ndarray:
        if UNKNOWN not in self.names:
            raise ValueError("this action space has no 'unknown' entry (it cannot express action-free frames)")
        return self.encode([UNKNOWN])

    def null(self) -> np.ndarray:
        """The guidance null: "unknown" where the space has it, else no keys (as Oasis trains)."""
        return self.unknown() if UNKNOWN in self.names else self.no_keys()

    def check(self, actions: np.ndarray, what: str = "actions") -> None:
        if actions.shape[-1] != self.size:
            raise ValueError(
                f"{what} has {actions.shape[-1]} entries in its last axis, but the action space has "
                f"{self.size} keys ({', '.join(self.names[:6])}, ...); shape was {tuple(actions.shape)}"
            )


DEFAULT = ActionSpace()


# Keys a web page cannot own: browsers act on Ctrl/Cmd and Alt combinations before the page sees
# them (Ctrl+W closes the tab, Alt+Left goes back), so a player never holds these to play.
BROWSER_RESERVED: tuple[str, ...] = ("ctrl", "alt")
# What a player presses instead, first unused one wins: plain keys one can hold with WASD.
SAFE_SUBSTITUTES: tuple[str, ...] = ("f", "space", "r", "c", "x", "z", "q", "e", "1", "2")


def play_bindings(names: Sequence[str]) -> dict[str, str]:
    """{action key: the key a player presses for it}: itself, except browser-reserved modifiers,
    which get the first SAFE_SUBSTITUTES key the world does not use. The model's action space
    keeps its names (a world trained with "ctrl" still receives "ctrl")."""
    names = [canonical(n) for n in names]
    taken = set(names)
    bindings = {}
    for name in names:
        if name in BROWSER_RESERVED:
            substitute = next((k for k in SAFE_SUBSTITUTES if k not in taken), None)
            if substitute is None:
                raise ValueError(f"no free key to stand in for {name!r} among {SAFE_SUBSTITUTES}")
            taken.add(substitute)
            bindings[name] = substitute
        else:
            bindings[name] = name
    return bindings


def canonical(key: str) -> str:
    """Lower-case name in our vocabulary for a key as a browser or recorder spells it."""
    if key == UNKNOWN:
        return key
    name = key.lower()
    if name.startswith("key") and len(name) == 4:  # KeyboardEvent.code: "KeyW"
        name = name[3]
    if name.startswith("digit") and len(name) == 6:  # "Digit1"
        name = name[5]
    return _ALIASES.get(name, name)


def align(pressed_between: np.ndarray, space: ActionSpace = DEFAULT) -> np.ndarray:
    """Actions per frame from the actions taken after each frame.

    A recorder observes frame t, then applies input u_t, which produces frame t+1. The model's
    contract is that action[t] is the input that led to frame t, so action[t] = u_{t-1} and
    action[0] is "no keys".

    pressed_between: [T, K] with row t the input applied after frame t (the last row is unused).
    Returns: [T, K].
    """
    space.check(pressed_between)
    out = np.empty_like(pressed_between)
    out[0] = space.no_keys()
    out[1:] = pressed_between[:-1]
    return out
