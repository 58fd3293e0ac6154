"""DiT's classifier-free-guided sampler in PyTorch, written from the public description of
facebookresearch/DiT `sample.py` and `models.py` (forward_with_cfg): the independent reference
`tests/test_dit_sample.py` compares `wm sample` against. The loops themselves are
tests/torch_reference_samplers.py's DDPM / DDIM over guided-diffusion's respacing.

forward_with_cfg, as described: the conditional half of the batch is duplicated, the second copy
labelled with the null class (the table's last row, 1000 for ImageNet); one forward pass; on the
first 3 output channels ε_null + s·(ε_cond - ε_null), the remaining channels (the other ε channels
and the learned variance) as each copy's own; sample.py keeps the conditional copy.
"""

from __future__ import annotations

import torch


def guided_model(model, labels, null_label, cfg_scale, guided_channels=3):
    """model(x [B, C, H, W], t [B] float, y [B] long) -> the conditional copy's guided output,
    as a loop's model(x, timestep int)."""

    def call(x, timestep):
        b = x.shape[0]
        both = torch.cat([x, x])
        y = torch.cat([labels, torch.full_like(labels, null_label)])
        with torch.no_grad():
            out = model(both, torch.full((2 * b,), float(timestep)), y)
        cond, null = out[:b], out[b:]
        g = guided_channels
        return torch.cat([null[:, :g] + cfg_scale * (cond[:, :g] - null[:, :g]), cond[:, g:]], dim=1)

    return call
