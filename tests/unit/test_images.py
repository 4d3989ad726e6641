"""augflow.data.images: an image folder (one subfolder per class) as a source."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from augflow.data.images import list_images, read_image_folder
from augflow.errors import AugflowError


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)
    return path


def _gray(value, h=4, w=5):
    return np.full((h, w), value, dtype=np.uint8)


def _folder(tmp_path):
    root = tmp_path / "shapes"
    _save(root / "square" / "b.png", _gray(200))
    _save(root / "square" / "a.png", np.arange(20, dtype=np.uint8).reshape(4, 5))
    _save(root / "circle" / "c.PNG", _gray(7))
    (root / "circle" / ".DS_Store").write_bytes(b"hidden: skipped")
    (root / ".cache").mkdir()                       # a hidden folder is not a class
    return root


def test_files_are_listed_sorted_by_class_then_name_and_hidden_ones_skipped(tmp_path):
    root = _folder(tmp_path)
    items = list_images(root)
    assert [(c, f.name) for c, f in items] == [("circle", "c.PNG"), ("square", "a.png"),
                                               ("square", "b.png")]


def test_a_gray_folder_becomes_image_rows(tmp_path):
    root = _folder(tmp_path)
    raw = read_image_folder(root, None, None)
    assert raw.kind == "image" and raw.image_shape == (4, 5, 1) and raw.pixel_range == (0.0, 255.0)
    assert raw.label_column == "label" and raw.origin == "image_folder:shapes"
    assert raw.labels.tolist() == ["circle", "square", "square"]
    assert [f.rsplit("/", 1)[1] for f in raw.row_files] == ["c.PNG", "a.png", "b.png"]
    assert raw.frame.shape == (3, 20) and raw.frame.columns[0] == "pixel_0_0"
    assert raw.frame.iloc[0].tolist() == [7.0] * 20
    assert raw.frame.iloc[1].tolist() == list(range(20))      # row-major pixel order
    assert raw.frame.dtypes.eq(np.float32).all()


def test_rgb_images_keep_three_channels_and_can_be_converted(tmp_path):
    root = tmp_path / "rgb"
    px = np.zeros((4, 4, 3), np.uint8)
    px[..., 0], px[..., 2] = 255, 10
    _save(root / "a" / "1.png", px)
    _save(root / "b" / "2.jpg", px)
    raw = read_image_folder(root, None, None)
    assert raw.image_shape == (4, 4, 3) and raw.frame.shape == (2, 48)
    assert raw.frame.columns[:3].tolist() == ["pixel_0_0_0", "pixel_0_0_1", "pixel_0_0_2"]
    assert raw.frame.iloc[0, :3].tolist() == [255.0, 0.0, 10.0]    # channel-last
    gray = read_image_folder(root, None, 1)
    assert gray.image_shape == (4, 4, 1) and gray.frame.shape == (2, 16)


def test_image_size_resizes_every_image(tmp_path):
    root = tmp_path / "sizes"
    _save(root / "a" / "big.png", _gray(50, 8, 6))
    _save(root / "b" / "small.png", _gray(90, 4, 4))
    raw = read_image_folder(root, (5, 7), None)               # (height, width)
    assert raw.image_shape == (5, 7, 1)
    assert raw.frame.iloc[0].tolist() == [50.0] * 35 and raw.frame.iloc[1].tolist() == [90.0] * 35


def _error(root, size=None, channels=None) -> AugflowError:
    with pytest.raises(AugflowError) as info:
        read_image_folder(root, size, channels)
    return info.value


def test_a_missing_folder_or_one_without_class_folders(tmp_path):
    err = _error(tmp_path / "nope")
    assert (err.file, err.field, err.rule) == (str(tmp_path / "nope"), "data.path", "folder")
    flat = tmp_path / "flat"
    _save(flat / "x.png", _gray(1))
    err = _error(flat)
    assert (err.file, err.field, err.rule) == (str(flat), "data.path", "one subfolder per class")


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    root = _folder(tmp_path)
    (root / "square" / "notes.txt").write_text("hello")
    err = _error(root)
    assert (err.file, err.rule) == (str(root / "square" / "notes.txt"), "png or jpeg")


def test_an_empty_class_folder_is_named(tmp_path):
    root = _folder(tmp_path)
    (root / "triangle").mkdir()
    (root / "triangle" / ".hidden").write_text("")
    err = _error(root)
    assert (err.file, err.rule) == (str(root / "triangle"), "non-empty")


def test_a_corrupt_image_is_named(tmp_path):
    root = _folder(tmp_path)
    (root / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    err = _error(root)
    assert (err.file, err.rule) == (str(root / "square" / "broken.png"), "decodable image")
    assert "cannot decode" in str(err)


def test_a_different_size_names_the_file_and_the_setting_that_fixes_it(tmp_path):
    root = _folder(tmp_path)
    _save(root / "square" / "c.png", _gray(1, 6, 6))
    err = _error(root)
    assert err.file == str(root / "square" / "c.png")
    assert (err.field, err.rule) == ("data.image_size", "one size for all images")
    assert "c.PNG" in str(err)                     # the first image, whose size the others need
    assert read_image_folder(root, (4, 5), None).frame.shape == (4, 20)   # and the fix works


def test_a_different_channel_count_names_the_setting_that_fixes_it(tmp_path):
    root = _folder(tmp_path)
    _save(root / "square" / "c.png", np.zeros((4, 5, 3)))
    err = _error(root)
    assert err.file == str(root / "square" / "c.png")
    assert (err.field, err.rule) == ("data.image_channels", "one channel count for all images")
    assert read_image_folder(root, None, 1).image_shape == (4, 5, 1)


def test_a_16_bit_gray_png_is_scaled_or_refused_not_saturated(tmp_path):
    root = tmp_path / "deep"
    levels = (np.arange(16, dtype=np.uint16) * 4369).reshape(4, 4)   # 0 .. 65535
    deep_png = root / "a" / "x.png"
    deep_png.parent.mkdir(parents=True)
    Image.fromarray(levels).save(deep_png)
    with Image.open(deep_png) as im:
        assert im.mode == "I;16"
    _save(root / "b" / "y.png", _gray(0, 4, 4))
    try:
        raw = read_image_folder(root, None, None)
    except AugflowError as err:             # refusing 16-bit images with a clear error is fine
        assert err.file == str(deep_png)
        return
    assert np.allclose(raw.frame.iloc[0].to_numpy(), levels.ravel() / 257, atol=1.0)
