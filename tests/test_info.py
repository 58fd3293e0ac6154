"""`wm info`: counts that add up, and a per-frame cost taken from the compiled step."""

import json

import pytest

from wm_jax import cli
from wm_jax import configs, info
from wm_jax import model as wm_model


def test_wm_info_json_for_tiny(capsys, tiny_params):
    assert cli.main(["info", "tiny", "--json", "--steps", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    counts = printed["parameters"]
    assert counts["total"] == wm_model.count_params(tiny_params)
    assert counts["spatial"] + counts["temporal"] + counts["embedding"] == counts["total"]
    assert printed["tokens_per_frame"] == 16
    # 2 denoising passes + 1 cache pass, each at least 2 FLOPs per token per weight of the blocks.
    block_weights = counts["spatial"] + counts["temporal"]
    assert printed["frame"]["flops"] > 3 * 2 * 16 * block_weights * 0.5


def test_cost_grows_with_denoising_steps(tiny_config):
    from wm_jax.diffusion import SamplerConfig

    two = info.frame_cost(tiny_config, SamplerConfig(steps=2))["flops"]
    eight = info.frame_cost(tiny_config, SamplerConfig(steps=8))["flops"]
    assert 2.5 < eight / two < 3.5  # 9 passes against 3


def test_wm_info_unknown_name(capsys):
    assert cli.main(["info", "wm_9b", "--no-cost"]) == 2
    assert "unknown model configuration 'wm_9b'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["image_420m", "wm_516m", "wm_800m"])
def test_breakdown_of_named_configurations(name):
    counts = info.parameter_breakdown(configs.get_config(name))
    assert counts["spatial"] + counts["temporal"] + counts["embedding"] == counts["total"]
    assert (counts["temporal"] == 0) == (name == "image_420m")
