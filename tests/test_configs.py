"""The gin configurations: every file under experiments/configs parses; stage files built as
includes of a base resolve to what they resolved to before (tests/config_snapshots.json, written
from the configurations as they were before issue 17); model fields bind by name; the run section
is one dataclass for both trainings; a workdir's config.gin from before issue 17 still reads, and
the shipped worlds' recorded configurations equal today's stage files."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import gin
import pytest

from train_helpers import ROOT
from wm_jax import autoencoder, configs
from wm_jax.train import autoencoder as ae_train
from wm_jax.train import config

CONFIGS = pathlib.Path(ROOT) / "experiments" / "configs"
BASES = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.glob("base/*.gin"))
RUNNABLE = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.gin") if "base" not in p.relative_to(CONFIGS).parts)
SNAPSHOTS = json.loads((pathlib.Path(__file__).parent / "config_snapshots.json").read_text())


def factory(name: str):
    return ae_train.AutoencoderExperiment if pathlib.Path(name).name.startswith("ae_") else None


def parse(name: str, *bindings: str):
    # Includes name paths from the repository root, as `wm train` run there does.
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return config.parse([str(CONFIGS / name)], list(bindings), factory=factory(name))
    finally:
        os.chdir(cwd)


def resolved(experiment) -> dict:
    """The experiment as one flat JSON dict: the Run section's fields beside the experiment's own,
    the model (or autoencoder) preset with its bound fields as the whole config it makes."""
    fields = {f.name: getattr(experiment, f.name) for f in dataclasses.fields(experiment) if f.name != "run"}
    fields.update({f.name: getattr(experiment.run, f.name) for f in dataclasses.fields(experiment.run)})
    if isinstance(experiment, ae_train.AutoencoderExperiment):
        fields["autoencoder_config"] = autoencoder.get_config(experiment.autoencoder, **fields.pop("autoencoder_overrides"))
    else:
        model = configs.get_config(experiment.model, **fields.pop("model_overrides"))
        fields["model_config"] = {k: v for k, v in dataclasses.asdict(model).items() if k != "action_keys"}
    plain = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in fields.items()}
    return json.loads(json.dumps(plain))  # tuples as lists, as the snapshot holds them


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_config_parses_and_says_how_to_run_it(name):
    header = (CONFIGS / name).read_text().split("\n\n")[0]
    command = "wm train-ae" if factory(name) else "wm train"
    assert f"{command} --gin_file experiments/configs/{name}" in header and "cost" in header.lower()
    experiment, _ = parse(name)
    assert experiment.run.num_steps >= 1


@pytest.mark.parametrize("name", BASES)
def test_every_base_binds_known_fields_and_says_it_is_a_base(name):
    text = (CONFIGS / name).read_text()
    assert text.startswith(f"# {name[:-len('.gin')]}:")
    gin.clear_config()
    gin.parse_config(text)  # unknown configurables or fields raise here
    assert any(f"experiments/configs/{name}" in (CONFIGS / other).read_text() for other in RUNNABLE + BASES)


def without_new_fields(got: dict, want: dict, default: dict) -> dict:
    """`got` without the fields added to the dataclasses since the snapshot, each checked to be at
    its default (a new field keeps the recipe only there)."""
    out = {}
    for key, value in got.items():
        if key not in want:
            assert key in default and value == default[key], f"{key} = {value!r}: new since the snapshot, not at its default"
        elif isinstance(value, dict) and isinstance(want[key], dict) and isinstance(default.get(key), dict):
            out[key] = without_new_fields(value, want[key], default[key])
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("name", sorted(SNAPSHOTS))
def test_stage_configs_resolve_as_before_the_includes(name):
    default, _ = config.parse([], ["Data.datasets = {'d': 1.0}"], factory=factory(name))
    got, want = resolved(parse(name)[0]), SNAPSHOTS[name]
    assert without_new_fields(got, want, resolved(default)) == want


def test_a_stage_file_shows_only_what_differs():
    lines = [line for line in (CONFIGS / "world_doom64_stage2.gin").read_text().splitlines() if line and line[0] != "#"]
    assert len(lines) <= 4, lines


def test_model_fields_bind_by_name_on_the_preset():
    experiment, text = parse("smoke.gin", "ModelConfig.depth = 3", "ModelConfig.action_gain = 4.0")
    assert experiment.model_overrides == {"depth": 3, "action_gain": 4.0}
    assert "ModelConfig.depth = 3" in text
    assert configs.get_config(experiment.model, **experiment.model_overrides) == configs.get_config("tiny").replace(depth=3, action_gain=4.0)
    # gin only declares the fields: the dataclass itself is untouched by the bindings.
    assert configs.ModelConfig().depth == 2 and type(configs.get_config("tiny")) is configs.ModelConfig


@pytest.mark.parametrize("binding, message", [
    ("ModelConfig.dpeth = 3", "doesn't have a parameter named 'dpeth'"),
    ("AutoencoderConfig.widht = 3", "doesn't have a parameter named 'widht'"),
    ("Experiment.model_overrides = {'depth': 3}", "bind ModelConfig.<field> = value"),
    ("Experiment.num_steps = 3", "bind Run.num_steps instead"),
    ("AutoencoderExperiment.seed = 3", "bind Run.seed instead"),
    ("Run.num_steps = 0", "Run.num_steps must be >= 1, got 0"),
])
def test_a_misspelt_or_moved_binding_is_refused_naming_it(binding, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("<", ".").replace(">", ".")):
        parse("smoke.gin", binding)


def test_both_trainings_share_one_run_section():
    world, _ = parse("smoke.gin", "Run.num_steps = 7", "Optimizer.learning_rate = 0.25")
    ae, _ = parse("ae_smoke.gin", "Run.num_steps = 7", "Optimizer.learning_rate = 0.25", "AutoencoderConfig.width = 16")
    assert type(world.run) is type(ae.run) is config.RunConfig
    assert world.run.num_steps == ae.run.num_steps == 7
    assert world.run.optimizer.learning_rate == ae.run.optimizer.learning_rate == 0.25
    assert ae.autoencoder_config().width == 16


LEGACY = """\
Data.datasets = {'recordings/pan': 1.0}
Experiment.checkpoint_every = 5
Experiment.model = 'tiny'
Experiment.model_overrides = \\
    {'depth': 3,
     'window': 4}
Experiment.num_steps = 20
Optimizer.learning_rate = 0.001
"""
TODAY = """\
Data.datasets = {'recordings/pan': 1.0}
Run.checkpoint_every = 5
Experiment.model = 'tiny'
ModelConfig.depth = 3
ModelConfig.window = 4
Run.num_steps = 20
Optimizer.learning_rate = 0.001
"""


def test_a_workdir_config_from_before_issue_17_reads_and_resumes(tmp_path):
    assert config.upgrade_legacy(LEGACY) == TODAY
    (tmp_path / "config.gin").write_text(LEGACY)
    old, old_text = config.parse_workdir_config(str(tmp_path / "config.gin"))
    new, new_text = config.parse([], [TODAY])
    assert old == new and old_text == new_text
    assert config.same_bindings(LEGACY, new_text)
    assert not config.same_bindings(LEGACY, new_text.replace("Run.num_steps = 20", "Run.num_steps = 21"))


# The shipped worlds' recorded configurations (their training folders: history, read only, in the
# names of before issue 17) against today's stage files, which include bases instead.
SHIPPED_STAGES = {
    "doom/training/stage1": "proxy/doom_paint_still_w0025_recolour1",
    "pan/training/stage1": "proxy/pan_sample_score_recolour1", "pan/training/stage2": "world_pan64_v9",
}


@pytest.mark.parametrize("recorded, name", sorted(SHIPPED_STAGES.items()))
def test_shipped_worlds_recorded_configs_equal_todays_stage_files(recorded, name):
    found = sorted(pathlib.Path(ROOT).glob(f"*/worlds/{recorded}_config.gin"))
    if not found:
        pytest.skip(f"no {recorded}_config.gin in this checkout")
    old, _ = config.parse_workdir_config(str(found[0]))
    assert old == parse(f"{name}.gin")[0]
