"""`wm train` / `wm plot` end to end, the non-finite stop, --init_from, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import model_apply, randomize
from wm_jax.cli import main
from train_helpers import SMOKE, bindings, record_pan
from wm_jax import configs
from wm_jax import model as wm_model
from wm_jax.train import init_from
from wm_jax.train.checkpoint import Checkpoints
from wm_jax.train.metrics import read_metrics
from wm_jax.world import load_world


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return record_pan(tmp_path_factory.mktemp("pan"))


def wm_train(workdir, params, *extra):
    argv = ["train", "--gin_file", SMOKE, "--workdir", str(workdir), *extra]
    for binding in params:
        argv += ["--gin_param", binding]
    return main(argv)


def test_wm_train_logs_checkpoints_evaluates_and_plots(dataset, tmp_path, capsys):
    params = bindings(dataset, **{"Run.num_steps": 4, "Run.checkpoint_every": 2,
                                  "Evaluation.every": 4, "Evaluation.context_frames": 1})
    assert wm_train(tmp_path, params) == 0
    out = capsys.readouterr()
    assert "step FLOPs" in out.err + out.out and "memory per device" in out.err + out.out
    rows = read_metrics(str(tmp_path))
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["frames_per_s"] > 0 for r in rows if "loss" in r)
    assert any("eval_loss" in r for r in rows)
    assert sorted(Checkpoints(str(tmp_path / "checkpoints"), async_save=False).all_steps()) == [2, 4]
    assert list((tmp_path / "tb").iterdir()), "TensorBoard events written"
    strip = np.asarray(Image.open(tmp_path / "eval" / "rollout_0000004.png"))
    assert strip.shape == (2 * 2 * (16 + 2), 4 * (16 + 2), 3)  # 2 examples x (truth, generated) rows, 4 frames
    assert main(["plot", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "loss.png").size[0] > 100

    # Finished run, same config: resumes at the end and does nothing. Another config: refused.
    assert wm_train(tmp_path, params) == 0
    assert wm_train(tmp_path, params + ["Optimizer.learning_rate = 0.5"]) == 2
    assert "another configuration" in capsys.readouterr().err

    # The finished run exports to a world that plays with the run's EMA params.
    bundle = tmp_path / "world"
    assert main(["export-world", str(tmp_path), "--name", "smoke", "--out", str(bundle),
                 "--keys", "right=pan right,left=pan left", "--steps", "2"]) == 0
    played = load_world(bundle)
    _, ema = init_from.load(str(tmp_path))
    jax.tree_util.tree_map(np.testing.assert_array_equal, played.params, ema)
    state = played.start(np.zeros((40, 30, 3), np.uint8))
    _, frame = played.step(state, {"right"})
    assert frame.shape == (16, 16, 3) and frame.dtype == np.uint8
    assert main(["export-world", str(tmp_path), "--name", "again", "--out", str(bundle), "--keys", "w"]) != 0
    # Zoom keys need a model that keeps the zoomed picture (paint_uncovered_only): refused, nothing written.
    capsys.readouterr()
    assert main(["export-world", str(tmp_path), "--name", "zoomer", "--out", str(tmp_path / "zoomer"),
                 "--keys", "left=pan left,e=zoom in", "--zoom-keys", "e=1.1"]) != 0
    assert "paint_uncovered_only" in capsys.readouterr().err and not (tmp_path / "zoomer" / "world.json").exists()


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(dataset, tmp_path, capsys):
    # A learning rate of 1e30 makes the first update's params ~1e30: the next loss overflows.
    params = bindings(dataset, **{"Run.num_steps": 6, "Run.checkpoint_every": 1,
                                  "Optimizer.learning_rate": 1e30, "Optimizer.warmup_steps": 0})
    assert wm_train(tmp_path, params) == 1
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "at step 2" in err and "last good checkpoint is step 1" in err
    steps = Checkpoints(str(tmp_path / "checkpoints"), async_save=False).all_steps()
    assert steps == [1]


@pytest.mark.parametrize("binding, message", [
    ("Experiment.bogus = 1", "doesn't have a parameter named 'bogus'"),
    ("Data.datasets = {'/nonexistent/pan': 1.0}", "does not exist"),
    ("Data.clip_len = 9", "longer than the model's max_frames"),
    ("Data.resolution = (18, 18)", "not a multiple"),
])
def test_bad_input_is_refused_before_compiling(dataset, tmp_path, capsys, binding, message):
    assert wm_train(tmp_path, bindings(dataset) + [binding]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_init_from_copies_image_params_and_refuses_misfits(tmp_path):
    world = configs.get_config("tiny")
    image = world.replace(temporal_every=0)
    source = wm_model.init_params(image, jax.random.key(3))
    wm_model.save(str(tmp_path / "image"), image, source)
    name, loaded = init_from.load(str(tmp_path / "image"))
    target = wm_model.init_params(world, jax.random.key(4))
    copied, fresh = init_from.check(target, loaded)
    assert fresh and all(name.startswith("temporal_") for name in fresh)
    merged = init_from.merge(target, loaded)
    np.testing.assert_array_equal(merged["spatial_1"]["mlp"]["fc1"]["kernel"], source["spatial_1"]["mlp"]["fc1"]["kernel"])
    np.testing.assert_array_equal(merged["temporal_0"]["attn"]["qkv"]["kernel"], target["temporal_0"]["attn"]["qkv"]["kernel"])

    wider = wm_model.abstract_params(world.replace(width=128))
    with pytest.raises(ValueError, match="shape mismatch"):
        init_from.check(wider, loaded)


def test_init_from_widens_the_patch_embedding_for_previous_frame_input(tmp_path):
    """A model trained without the previous frame at its input, continued with it: the extra
    patch-embedding channels start at zero, so the merged model is the source's function."""
    plain = configs.get_config("tiny")
    with_previous = plain.replace(previous_frame_input=True)
    source = randomize(wm_model.init_params(plain, jax.random.key(3)), jax.random.key(5))
    target = wm_model.init_params(with_previous, jax.random.key(4))
    copied, fresh = init_from.check(target, source)
    assert init_from.PATCH_KERNEL in copied and not fresh
    merged = init_from.merge(target, source)
    kernel = merged["patch_embed"]["proj"]["kernel"]
    np.testing.assert_array_equal(kernel[:, :, :plain.in_channels], source["patch_embed"]["proj"]["kernel"])
    assert not np.any(np.asarray(kernel[:, :, plain.in_channels:]))
    x = jax.random.normal(jax.random.key(6), (1, 3, *plain.latent_size, plain.in_channels))
    t, a = jnp.full((1, 3), 0.5), jnp.zeros((1, 3, plain.action_dim))
    np.testing.assert_allclose(model_apply(with_previous)(merged, x, t, a), model_apply(plain)(source, x, t, a), atol=1e-5)
    tripled = wm_model.abstract_params(plain.replace(in_channels=3 * plain.in_channels))
    with pytest.raises(ValueError, match="shape mismatch patch_embed/proj/kernel"):
        init_from.check(tripled, source)


def test_world_stage_starts_from_an_image_stage_workdir(dataset, tmp_path, capsys):
    image = bindings(dataset, **{"Experiment.stage": "image", "Data.clip_len": 1, "Run.num_steps": 2,
                                 "Run.checkpoint_every": 2, "ModelConfig.temporal_every": 0})
    assert wm_train(tmp_path / "image", image) == 0
    world = bindings(dataset, **{"Run.num_steps": 1})
    assert wm_train(tmp_path / "world", world, "--init_from", str(tmp_path / "image")) == 0
    out = capsys.readouterr()
    assert "initialised 32 param leaves from EMA params of" in out.err + out.out
    # A model that does not fit is refused before anything compiles.
    wide = world + ["ModelConfig.width = 128"]
    assert wm_train(tmp_path / "wide", wide, "--init_from", str(tmp_path / "image")) == 2
    assert "does not fit" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--gin_file", "missing.gin"], "--gin_file missing.gin: no such file"),  # was a TypeError inside gin
    (["--gin_file", SMOKE, "--gin_param", "Data.batch_size = 0"], "Data.batch_size must be an integer >= 1, got 0"),
])
def test_bad_config_is_one_line(tmp_path, capsys, argv, message):
    assert main(["train", *argv, "--workdir", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"wm train: error: {message}\n" and not captured.out
    assert not (tmp_path / "run").exists()
