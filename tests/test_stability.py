"""The stability suite (`wm eval --stability`): its distance, its bars, and the whole run on a
model that copies exactly (passes the still-scene bar) against one that does not."""

import json

import jax
import numpy as np
import pytest

from wm_jax import autoencoder, plots, stability
from wm_jax.diffusion import SamplerConfig
from wm_jax import model as wm_model


def test_frechet_distance_is_zero_for_one_set_and_the_mean_shift_for_a_translated_one():
    a = np.random.default_rng(0).normal(size=(400, 8))
    assert stability.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.arange(8) / 4.0
    assert stability.frechet_distance(a, a + shift) == pytest.approx(float(np.sum(shift**2)), rel=1e-4)


def _report(sharp, std, frechet, still):
    rows = lambda: [{"sharpness_ratio": s, "std_ratio": d, "frechet": f} for s, d, f in zip(sharp, std, frechet)]
    blocks = {"none": rows(), "recorded": rows()}
    blocks["none"][-1]["psnr_vs_start_last"] = still
    return {"blocks": blocks}


def test_targets_are_issue_15s_bars():
    good = stability.targets(_report([0.9, 1.1], [1.0, 0.8], [10.0, 12.0], 30.0))
    assert all(t["passed"] for t in good.values())
    bad = stability.targets(_report([0.9, 0.5], [1.0, 1.4], [10.0, 13.0], 20.0))
    assert not any(t["passed"] for t in bad.values())


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    from wm_jax.datasets.recording import iter_episodes
    from wm_jax.datasets.sources.image_pan import ImagePanRecorder
    from wm_jax.datasets.tfds_builder import write_episodes

    directory = tmp_path_factory.mktemp("held_out")
    write_episodes(directory, iter_episodes(ImagePanRecorder(resolution=(64, 64), allow_zoom=False), episodes=3, steps=12, seed=0))
    return directory


def _run(config, params, held_out_dir, frames=20):
    ae_config = autoencoder.get_config("pixel_p4")
    variables = autoencoder.init(ae_config, jax.random.key(0))
    config = config.replace(latent_size=ae_config.latent_shape(64, 64)[:2], in_channels=ae_config.latent_shape(64, 64)[2])
    params = params(config)
    data = stability.read_held_out([held_out_dir], starts=2, frames=frames, reference_frames=24)
    assert data.recorded_actions.shape[:2] == (2, frames)  # episodes of 12 concatenated
    return stability.run(config, params, SamplerConfig(steps=2, guidance=2.0), data,
                         encode=lambda x: autoencoder.encode(variables, x, ae_config),
                         decode=lambda z: autoencoder.decode(variables, z, ae_config),
                         rng=jax.random.key(0), frames=frames, block=10, hold_keys=("left", "e"), progress=False)


def test_a_model_that_copies_holds_still_and_one_that_does_not_fails(tiny_config, held_out, tmp_path):
    """An x0_residual model with its fresh (silent) head copies the start frame exactly under any
    keys: the still run scores the capped 100 dB and no script drifts. A velocity model at init
    generates noise: the still-scene bar fails."""
    copying = tiny_config.replace(previous_frame_input=True, prediction="x0_residual")
    report = _run(copying, lambda c: wm_model.init_params(c, jax.random.key(0)), held_out)
    assert report["scripts"] == ["none", "hold:left", "hold:e", "recorded"]
    assert report["blocks"]["none"][-1]["psnr_vs_start_last"] == 100.0
    assert report["targets"]["still_psnr_last"]["passed"]
    # a still scene is scored against its own start frames, not the pooled held-out frames
    assert report["real_starts"]["std"] != pytest.approx(report["real"]["std"], rel=1e-3)
    assert all(row[f"{k}_ratio"] == pytest.approx(1.0, rel=1e-4) for row in report["blocks"]["none"] for k in ("std", "sharpness", "mean"))
    assert all(g == pytest.approx(1.0, abs=1e-6) for g in report["targets"]["frechet_growth"]["per_script"].values())
    path = plots.plot_stability(report, str(tmp_path / "stability.png"))
    assert (tmp_path / "stability_frames.png").exists() and path.endswith(".png")
    del report["_last_frames"]
    json.dumps(report)

    drifting = tiny_config.replace(previous_frame_input=True)
    report = _run(drifting, lambda c: wm_model.init_params(c, jax.random.key(0)), held_out)
    assert report["blocks"]["none"][-1]["psnr_vs_start_last"] < stability.STILL_PSNR_MIN
    assert not report["targets"]["still_psnr_last"]["passed"]


def test_unknown_hold_key_is_refused(tiny_config):
    with pytest.raises(ValueError, match="not in this model's action space"):
        stability.key_scripts(tiny_config, np.zeros((1, 4, tiny_config.action_dim)), ["nope"], 4)
