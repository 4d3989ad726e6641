"""An image folder as a source: one subfolder per class, PNG or JPEG files, gray or RGB.

Files are listed in sorted order (reruns give the same bytes). With data.image_size and
data.image_channels set, images are resized and converted; without them every image must
already share one size and one channel count, and the first one that does not is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augflow.data.raw import RawData, pixel_columns
from augflow.errors import AugflowError

EXTENSIONS = (".png", ".jpg", ".jpeg")


def _channels(mode: str) -> int:
    return 1 if mode in ("1", "L", "I", "I;16", "F", "LA") else 3


def list_images(root: Path) -> list[tuple[str, Path]]:
    """(class name, file) pairs, sorted. Hidden files are skipped; other files are an error."""
    if not root.is_dir():
        raise AugflowError("expected a folder with one subfolder per class", file=str(root),
                           field="data.path", rule="folder")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise AugflowError("no class subfolders", file=str(root), field="data.path",
                           rule="one subfolder per class")
    out = []
    for cdir in classes:
        files = sorted(p for p in cdir.iterdir() if not p.name.startswith("."))
        for f in files:
            if f.suffix.lower() not in EXTENSIONS:
                raise AugflowError("not a PNG or JPEG file", file=str(f), rule="png or jpeg")
            out.append((cdir.name, f))
        if not files:
            raise AugflowError("class folder holds no images", file=str(cdir), rule="non-empty")
    return out


def _decode(path: Path, size: tuple[int, int] | None, channels: int | None):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            c = channels or _channels(im.mode)
            src: Image.Image = im
            if im.mode.startswith("I;16"):
                # Pillow's convert("L") clips 16-bit gray at 255 (nearly every pixel white):
                # scale 0..65535 onto the 0..255 pixel range instead.
                deep = np.asarray(im, dtype=np.float64) * (255.0 / 65535.0)
                src = Image.fromarray(np.round(deep).astype(np.uint8), "L")
            img = src.convert("L" if c == 1 else "RGB")
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise AugflowError(f"cannot decode the image ({type(err).__name__}: {str(err)[:120]})",
                           file=str(path), rule="decodable image") from None
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


def read_image_folder(root: Path, size: tuple[int, int] | None,
                      channels: int | None) -> RawData:
    items = list_images(root)
    first_shape: tuple[int, ...] | None = None
    first_file: Path | None = None
    rows, labels = [], []
    for label, f in items:
        arr = _decode(f, size, channels)
        if first_shape is None:
            first_shape, first_file = arr.shape, f
        elif arr.shape != first_shape:
            what = "size" if arr.shape[:2] != first_shape[:2] else "channel count"
            field = "data.image_size" if what == "size" else "data.image_channels"
            raise AugflowError(f"image {what} {arr.shape} differs from {first_shape} of "
                               f"{first_file}; set {field} to convert every image",
                               file=str(f), field=field, rule=f"one {what} for all images")
        rows.append(arr.ravel())
        labels.append(label)
    assert first_shape is not None   # list_images refuses a folder without images
    h, w, c = first_shape
    frame = pd.DataFrame(np.vstack(rows), columns=pixel_columns(h, w, c))
    return RawData(frame=frame, labels=np.asarray(labels), label_column="label", kind="image",
                   image_shape=(h, w, c), pixel_range=(0.0, 255.0),
                   origin=f"image_folder:{root.name}",
                   row_files=tuple(str(f) for _, f in items))
