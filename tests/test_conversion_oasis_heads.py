"""Oasis head count from the rotary tables (issue 16): a `.safetensors` export stores the shared
rotary tables at most once (safetensors refuses tensors sharing memory, so exporters drop the
per-block copies). `wm convert --layout oasis` without --heads reads the head count from whichever
table is present and says which; with none stored it says it fell back to 16."""

from __future__ import annotations

import numpy as np
import pytest

from wm_jax.conversion.layouts import oasis
from wm_jax import model as wm_model

torch = pytest.importorskip("torch")
from test_conversion_dit import convert_cli, write_safetensors  # noqa: E402
from test_conversion_oasis import HEADS, MAX_FRAMES, WIDTH, clip, numpy_sd, reference_oasis, run_model, torch_out  # noqa: E402

HEAD_DIM = WIDTH // HEADS  # 16: 4 spatial frequencies, 8 temporal ones


def _without_block_tables(sd, keep):
    return {k: v for k, v in sd.items() if not k.endswith("freqs") or k == keep}


@pytest.mark.parametrize("keep", ["spatial_rotary_emb.freqs", "temporal_rotary_emb.freqs", "blocks.1.s_attn.rotary_emb.freqs"])
def test_heads_are_read_from_the_one_stored_table(tmp_path, capsys, keep):
    reference = reference_oasis(seed=4)
    sd = _without_block_tables(numpy_sd(reference), keep)
    assert HEADS != oasis.DEFAULT_HEADS and sum(k.endswith("freqs") for k in sd) == 1
    write_safetensors(tmp_path / "o.safetensors", sd)
    x, t, cond = clip(1, seed=5)
    expected = torch_out(reference, x, t, cond)
    np.savez(tmp_path / "ref.npz", x=x, t=t, cond=cond, out=expected)
    argv = [tmp_path / "o.safetensors", tmp_path / "m", "--layout", "oasis", "--latent-size", "6x8",
            "--max-frames", MAX_FRAMES, "--verify", tmp_path / "ref.npz"]
    assert convert_cli(argv) == 0  # no --heads
    printed = capsys.readouterr().out
    assert f"heads: {HEADS} (head_dim {HEAD_DIM} from {keep})" in printed
    config, params = wm_model.load(str(tmp_path / "m"))
    assert config.num_heads == HEADS
    np.testing.assert_allclose(run_model(config, params, x, t, cond), expected, atol=1e-4, rtol=0)


def test_no_table_falls_back_to_16_and_says_so():
    sd = {k: v for k, v in numpy_sd(reference_oasis()).items() if not k.endswith("freqs")}
    heads, told = oasis.infer_heads(sd)
    assert heads == oasis.DEFAULT_HEADS == 16 and "no rotary table is stored" in told and "--heads" in told
    all_tables = numpy_sd(reference_oasis())
    assert oasis.infer_heads(all_tables) == (HEADS, f"{HEADS} (head_dim {HEAD_DIM} from blocks.0.s_attn.rotary_emb.freqs "
                                                    f"and {1 + 2 * 2} more)")
    config = oasis.convert(all_tables, latent_size=(6, 8), max_frames=MAX_FRAMES).config  # library default: inferred too
    assert config.num_heads == HEADS


def test_tables_that_disagree_or_contradict_heads_are_refused(tmp_path, capsys):
    sd = numpy_sd(reference_oasis())
    sd["temporal_rotary_emb.freqs"] = sd["temporal_rotary_emb.freqs"][:4]  # head_dim 8 against the spatial 16
    with pytest.raises(ValueError, match="disagree on the head size") as info:
        oasis.infer_heads(sd)
    assert "temporal_rotary_emb.freqs -> head_dim 8" in str(info.value)
    write_safetensors(tmp_path / "o.safetensors", _without_block_tables(numpy_sd(reference_oasis()), "spatial_rotary_emb.freqs"))
    argv = [tmp_path / "o.safetensors", tmp_path / "m", "--layout", "oasis", "--latent-size", "6x8", "--heads", 2]
    assert convert_cli(argv) == 2  # --heads 2 means head_dim 32: the stored table says 16
    assert "spatial_rotary_emb.freqs: shape" in capsys.readouterr().err
