"""The classic image transforms: a random affine map (rotation, translation, scale, shear) and an
elastic distortion, in one resampling per image.

What a practitioner gets for free from torchvision.transforms (RandomAffine, ElasticTransform),
written for channel-last rows in [0, 1] so that numpy alone runs it. One function makes the
classic arm, the classic rows of the augmented set and the VAE's training copies, so the
baseline augflow must beat is the one its own rows are built on.

Elastic distortion after Simard, Steinkraus & Platt (ICDAR 2003): a random displacement field,
uniform noise smoothed by a Gaussian, moves every pixel. Their 28x28 setting (sigma 4 px, alpha
34) moves a pixel by about 1.7 px rms per axis, 6% of the side; beat affine maps on MNIST for both
an MLP and a CNN. Here both sizes are fractions of the image side, so one setting means the same
on 8x8 digits and 32x32 patches; each image's field is scaled to exactly that rms (a fixed
alpha would move small images more, since smoothing shrinks the noise by 1/sigma in pixels)."""

from __future__ import annotations

import numpy as np

from augflow.config import ClassicConfig

# Images resampled per map_coordinates call: bounds the coordinate arrays (3 x n x h x w float64)
# to ~60 MB at 32x32x3, whatever the number of rows. Fixed, so the random draws (taken per chunk)
# do not depend on the machine.
CHUNK = 2048
_BORDER = {"zero": "constant", "reflect": "mirror", "nearest": "nearest"}


def _inverse_affines(n: int, h: int, w: int, cfg: ClassicConfig, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per image the 2x2 inverse of scale x rotation x shear, in (row, col) coordinates, and the
    translation in pixels. Sampling the source at inv @ (p - centre - t) + centre is the same as
    moving the image by the forward map."""
    ang = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation, n))
    shear = np.deg2rad(rng.uniform(-cfg.shear, cfg.shear, n))
    zoom = rng.uniform(cfg.scale[0], cfg.scale[1], n)
    t = rng.uniform(-cfg.translate, cfg.translate, (n, 2)) * np.array([h, w])
    cos, sin, tan = np.cos(ang), np.sin(ang), np.tan(shear)
    # forward in (x=col, y=row): zoom * R(ang) @ [[1, tan], [0, 1]]; written for (row, col)
    fwd = np.empty((n, 2, 2))
    fwd[:, 0, 0] = sin * tan + cos    # d row / d row
    fwd[:, 0, 1] = sin                # d row / d col
    fwd[:, 1, 0] = cos * tan - sin    # d col / d row
    fwd[:, 1, 1] = cos                # d col / d col
    fwd *= zoom[:, None, None]
    return np.linalg.inv(fwd), t


def _elastic_fields(n: int, h: int, w: int, cfg: ClassicConfig, rng: np.random.Generator
                    ) -> np.ndarray:
    """(n, 2, h, w) displacements in pixels: smoothed uniform noise, each image's field scaled to
    an rms of cfg.elastic x the side."""
    from scipy.ndimage import gaussian_filter

    side = min(h, w)
    noise = rng.uniform(-1, 1, (n, 2, h, w))
    sigma = cfg.elastic_smoothness * side
    field = gaussian_filter(noise, sigma=(0, 0, sigma, sigma), mode="reflect")
    rms = np.sqrt((field ** 2).mean(axis=(1, 2, 3), keepdims=True))
    return field / np.maximum(rms, 1e-12) * (cfg.elastic * side)


def _warp(imgs: np.ndarray, cfg: ClassicConfig, rng: np.random.Generator) -> np.ndarray:
    """One chunk of (n, h, w, c) images, each moved by its own random affine map and field."""
    from scipy.ndimage import map_coordinates

    n, h, w, c = imgs.shape
    inv, t = _inverse_affines(n, h, w, cfg, rng)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                             indexing="ij")
    rel = np.stack([rows, cols])[None] - (centre + t)[:, :, None, None]      # (n, 2, h, w)
    src = np.einsum("nij,njhw->nihw", inv, rel) + centre[None, :, None, None]
    if cfg.elastic > 0:
        src = src + _elastic_fields(n, h, w, cfg, rng)
    # the image index as a third coordinate: one call resamples the whole chunk (linear
    # interpolation at an integer index takes that image alone)
    index = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None, None], (n, h, w))
    out = np.empty_like(imgs)
    for ch in range(c):
        out[..., ch] = map_coordinates(imgs[..., ch], [index, src[:, 0], src[:, 1]], order=1,
                                       mode=_BORDER[cfg.border], cval=0.0)
    return out


def classic_transform(x: np.ndarray, image_shape: tuple[int, ...], cfg: ClassicConfig,
                      rng: np.random.Generator) -> np.ndarray:
    """Rows of channel-last images (flattened, values in [0, 1]), each moved by a fresh random
    transform; same shape, float32, clipped to [0, 1]."""
    h, w = image_shape[:2]
    c = image_shape[2] if len(image_shape) > 2 else 1
    out = np.empty((len(x), h * w * c), np.float32)
    for start in range(0, len(x), CHUNK):
        imgs = np.asarray(x[start:start + CHUNK], np.float64).reshape(-1, h, w, c)
        out[start:start + CHUNK] = np.clip(_warp(imgs, cfg, rng), 0, 1).reshape(len(imgs), -1)
    return out


def describe(cfg: ClassicConfig) -> str:
    """The transforms in one line, for the reports."""
    parts = [f"rotation ±{cfg.rotation:g}°", f"translation ±{100 * cfg.translate:g}% of the side",
             f"scale {cfg.scale[0]:g}–{cfg.scale[1]:g}", f"shear ±{cfg.shear:g}°"]
    parts.append(f"elastic distortion {100 * cfg.elastic:g}% of the side rms (smoothness "
                 f"{100 * cfg.elastic_smoothness:g}% of the side)" if cfg.elastic > 0
                 else "no elastic distortion")
    return ", ".join(parts) + f"; border {cfg.border}"
