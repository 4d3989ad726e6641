"""Which network fits the data: convolutional for images of 28x28 and larger, else an MLP."""

from __future__ import annotations

from augflow.errors import AugflowError

CONV_MIN_SIDE = 28


def pick_arch(requested: str, image_shape, conv_name: str, field: str) -> str:
    """requested: "auto", "mlp" or the conv name ("conv" for the VAE, "cnn" for the extractor)."""
    if requested == "auto":
        big = image_shape is not None and min(image_shape[:2]) >= CONV_MIN_SIDE
        return conv_name if big else "mlp"
    if requested == conv_name and image_shape is None:
        raise AugflowError(f"{conv_name} needs image data; this source is a table",
                           file="params.yaml", field=field, rule="conv models need images")
    return requested


# The optimizer steps `max_steps: auto` allows a convolutional model (the conv VAE, the CNN
# extractor). On these 2 cores the conv VAE trains ~360 rows/s: 2000 steps of 64 rows are about
# 6 minutes, which 70,000 images need to fit the 20-minute budget (README, "At scale"). The
# 28x28 letters at 5 labels per class stop on their own after ~1,200 steps; at 10 the budget
# binds (epoch 112 of 18 steps, best epochs 92-109) and test accuracy stayed within noise of
# the unbudgeted fits (BENCHMARKS.md section 5). MLP models get no budget: digits' MLP VAE
# takes ~33,000 cheap steps and stays as it was.
CONV_AUTO_STEPS = 2000


def step_budget(requested: int | str | None, arch: str, conv_name: str) -> int | None:
    """max_steps as set, or for "auto" CONV_AUTO_STEPS for a convolutional arch, else None."""
    if requested == "auto":
        return CONV_AUTO_STEPS if arch == conv_name else None
    assert requested is None or isinstance(requested, int)
    return requested
