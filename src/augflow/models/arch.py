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
