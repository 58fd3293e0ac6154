"""Import PyTorch checkpoints into wm_jax: safe readers plus one strict layout table per model.

`torch_reader` reads .pt/.pth and .safetensors files into numpy without torch and without
running pickle code; `table` is the strict rename/transpose machinery the layouts share;
`layouts/<name>.py` holds one table per source model family.
"""
