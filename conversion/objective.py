"""The training objective a converted diffusion model records (ModelConfig fields), shared by layouts.

A layout knows its family's objective (DiT: DDPM epsilon, linear betas; Oasis: v-prediction,
sigmoid betas); the options `prediction`, `noise_schedule` and `diffusion_steps` say otherwise
for a checkpoint trained differently. Recorded, so every sampler samples the model as trained.
"""

from __future__ import annotations

FLOW_PREDICTIONS = ("velocity",)  # the flow choices of `prediction` (x0_residual is the project's own)


def objective_fields(
    layout_default: dict | None,
    prediction: str | None = None,
    noise_schedule: str | None = None,
    diffusion_steps: int | None = None,
    unknown: str = "",
) -> dict:
    """The objective fields to record: the layout's, with what the options say instead.

    layout_default: None when the layout cannot tell from this checkpoint; then `prediction`
    is required and `unknown` is the error without it.
    """
    fields = dict(layout_default or {})
    if prediction:
        fields["prediction"] = prediction
        if prediction in FLOW_PREDICTIONS:
            fields["noise_schedule"] = "flow"
        elif fields.get("noise_schedule") == "flow":
            del fields["noise_schedule"]
    if noise_schedule:
        fields["noise_schedule"] = noise_schedule
    if diffusion_steps:
        fields["diffusion_steps"] = diffusion_steps
    if "prediction" not in fields:
        raise ValueError(unknown)
    if "noise_schedule" not in fields:
        raise ValueError(f"--prediction {fields['prediction']} needs --noise-schedule (linear, cosine or sigmoid): "
                         "the checkpoint does not say which betas it was trained with")
    fields.setdefault("diffusion_steps", 1000)
    return fields
