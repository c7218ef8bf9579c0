"""Tests of maskgit_edit.data: sources, the data stream and host sharding."""

import dataclasses
import gzip
import os

import ml_collections
import numpy as np
import pytest
from PIL import Image

from maskgit_edit import data
from maskgit_edit.data import base as data_base
from maskgit_edit import files
from maskgit_edit.data import fashion_mnist
from maskgit_edit.data import photos
from maskgit_edit.data import shapes


def config(**overrides) -> ml_collections.ConfigDict:
  c = data.default_data_config()
  c.update(overrides)
  return c


def test_unknown_source_name_and_split_raise():
  with pytest.raises(ValueError, match="Unknown data source name 'mnist'"):
    data.get_source(config(name="mnist"), "train")
  with pytest.raises(ValueError, match="Unknown split 'validation'"):
    data.get_source(config(), "validation")


def test_missing_optional_fields_take_defaults():
  minimal = ml_collections.ConfigDict(
      dict(name="photos", image_size=8, seed=0, num_train=4, num_test=4)
  )
  source = data.get_source(minimal, "train")
  np.testing.assert_array_equal(
      source.get(np.arange(4))[0],
      data.get_source(config(**minimal), "train").get(np.arange(4))[0],
  )


# --- shapes -----------------------------------------------------------------


def test_shapes_are_deterministic_per_index():
  source = data.get_source(config(image_size=16, num_train=10), "train")
  images, labels = source.get(np.array([1, 2, 3]))
  again, again_labels = source.get(np.array([3, 1]))
  assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
  assert labels.dtype == np.int32
  np.testing.assert_array_equal(again, images[[2, 0]])
  np.testing.assert_array_equal(again_labels, labels[[2, 0]])


def test_shapes_train_and_test_differ():
  c = config(image_size=16, num_train=32, num_test=32)
  train, _ = data.get_source(c, "train").get(np.arange(32))
  test, _ = data.get_source(c, "test").get(np.arange(32))
  assert not any(np.array_equal(a, b) for a in train for b in test)
  other_seed, _ = data.get_source(config(image_size=16, seed=1), "train").get(
      np.arange(32)
  )
  assert not any(np.array_equal(a, b) for a in train for b in other_seed)


def _white_on_black(obj: shapes.SceneObject) -> shapes.Scene:
  black = (0.0, 0.0, 0.0)
  white_obj = dataclasses.replace(obj, color=(1.0, 1.0, 1.0))
  return shapes.Scene((black, black), 0.0, (white_obj,))


def _rendered_area(obj: shapes.SceneObject, image_size: int) -> float:
  image = shapes.render_scenes([_white_on_black(obj)], image_size)[0, ..., 0]
  return image.mean() / 255


def test_shapes_label_is_class_of_largest_rendered_object():
  c = config(image_size=32, num_train=40)
  _, labels = data.get_source(c, "train").get(np.arange(40))
  for index, label in enumerate(labels):
    scene = shapes.describe_scene(c.seed, "train", index)
    areas = sorted((_rendered_area(obj, 64), obj.kind) for obj in scene.objects)
    assert label == areas[-1][1]
    # The main object is never a close call.
    if len(areas) > 1:
      assert areas[-1][0] > 2 * areas[-2][0]
  # Every class occurs, so the labels carry information.
  assert set(labels.tolist()) == set(range(len(shapes.SHAPE_NAMES)))


@pytest.mark.parametrize("kind", range(len(shapes.SHAPE_NAMES)))
def test_shape_area_matches_its_rendering(kind):
  obj = shapes.SceneObject(
      kind, (0.5, 0.5), radius=0.25, angle=0.3, aspect=0.5, color=(1.0,) * 3
  )
  assert _rendered_area(obj, 64) == pytest.approx(obj.area, rel=0.02)


def test_shapes_antialiasing_matches_supersampling():
  scenes = [shapes.describe_scene(0, "train", i) for i in range(8)]
  small = shapes.render_scenes(scenes, 32).astype(float)
  large = shapes.render_scenes(scenes, 128).astype(float)
  supersampled = large.reshape(8, 32, 4, 32, 4, 3).mean(axis=(2, 4))
  psnr = 10 * np.log10(255**2 / np.mean((small - supersampled) ** 2))
  assert psnr > 35


def test_shapes_objects_stay_inside_the_frame():
  for index in range(50):
    for obj in shapes.describe_scene(0, "test", index).objects:
      x, y = obj.center_xy
      assert obj.circumradius <= min(x, y, 1 - x, 1 - y)


def test_shapes_image_size_bounds():
  for size in (8, 13):
    source = data.get_source(config(image_size=size), "test")
    images, _ = source.get(np.arange(2))
    assert images.shape == (2, size, size, 3)
  with pytest.raises(ValueError, match="image_size >= 8"):
    data.get_source(config(image_size=7), "train")
  with pytest.raises(ValueError, match="out of range"):
    data.get_source(config(num_train=5), "train").get(np.array([5]))


# --- photos -----------------------------------------------------------------


def test_photos_hold_out_whole_photographs():
  c = config(name="photos", image_size=16, num_train=20, num_test=6)
  train, test = data.get_source(c, "train"), data.get_source(c, "test")
  assert set(test.photo_names) == set(photos.TEST_PHOTOS)
  assert not set(train.photo_names) & set(test.photo_names)
  assert train.num_classes == len(train.photo_names) >= 8
  images, labels = test.get(np.arange(6))
  assert images.shape == (6, 16, 16, 3) and images.dtype == np.uint8
  assert set(labels.tolist()) == set(range(test.num_classes))


def test_photos_are_deterministic_per_index():
  source = data.get_source(config(name="photos", image_size=16), "train")
  images, labels = source.get(np.array([4, 7, 30]))
  again, again_labels = source.get(np.array([30, 4]))
  np.testing.assert_array_equal(again, images[[2, 0]])
  np.testing.assert_array_equal(again_labels, labels[[2, 0]])
  assert not np.array_equal(images[0], images[1])


def test_photo_label_names_the_cropped_photo():
  # Full-side crops of square photos are the whole photo.
  c = config(
      name="photos", image_size=16, photos_min_scale=1.0, photos_flip=False
  )
  source = data.get_source(c, "train")
  images, labels = source.get(np.arange(source.num_classes))
  for image, label in zip(images, labels):
    photo = photos.load_photo(source.photo_names[label])
    if photo.width == photo.height:
      expected = data_base.crop_resize(
          photo, (0, 0, photo.width, photo.height), 16
      )
      np.testing.assert_array_equal(image, expected)


def test_photos_bad_scales_raise():
  with pytest.raises(ValueError, match="min_scale"):
    data.get_source(config(name="photos", photos_min_scale=0.0), "train")


# --- fashion_mnist ----------------------------------------------------------


def _fashion_folder(folder, num=5, split="test"):
  """IDX files of `num` random garments; returns (images [N, 28, 28], labels)."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (num, 28, 28), dtype=np.uint8)
  labels = np.arange(num, dtype=np.uint8) % 10
  folder.mkdir(exist_ok=True)
  images_name, labels_name = fashion_mnist.FILES[split]
  fashion_mnist.write_idx(str(folder / images_name), images)
  fashion_mnist.write_idx(str(folder / labels_name), labels)
  return images, labels


def test_fashion_mnist_pads_to_three_grey_channels(tmp_path):
  images_Nx28x28, labels_N = _fashion_folder(tmp_path / "fm")
  source = data.get_source(
      config(name="fashion_mnist", fashion_mnist_dir=str(tmp_path / "fm")),
      "test",
  )
  images, labels = source.get(np.array([3, 0]))
  assert len(source) == 5 and source.num_classes == 10
  assert source.class_names[9] == "ankle boot"
  assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(images[..., 0], images[..., 2])
  np.testing.assert_array_equal(
      images[:, 2:30, 2:30, 1], images_Nx28x28[[3, 0]]
  )
  assert not images[:, :2].any() and not images[:, :, 30:].any()
  np.testing.assert_array_equal(labels, labels_N[[3, 0]])
  assert labels.dtype == np.int32


def test_fashion_mnist_reads_the_debian_package_when_installed():
  if not os.path.exists(fashion_mnist.DEBIAN_DIR):
    pytest.skip("dataset-fashion-mnist is not installed")
  train = data.get_source(config(name="fashion_mnist"), "train")
  test = data.get_source(config(name="fashion_mnist"), "test")
  assert (len(train), len(test)) == (60000, 10000)
  _, labels = test.get(np.arange(10000))
  np.testing.assert_array_equal(np.bincount(labels), np.full(10, 1000))


def test_fashion_mnist_corrupt_or_truncated_files_are_named(tmp_path):
  folder = tmp_path / "fm"
  _fashion_folder(folder)
  images_path = folder / fashion_mnist.FILES["test"][0]
  raw = gzip.decompress(images_path.read_bytes())
  images_path.write_bytes(gzip.compress(raw[:-10]))
  c = config(name="fashion_mnist", fashion_mnist_dir=str(folder))
  with pytest.raises(
      ValueError, match=f"Corrupt Fashion-MNIST file.*{images_path.name}"
  ):
    data.get_source(c, "test")
  images_path.write_bytes(b"not gzip at all")
  with pytest.raises(
      ValueError, match=f"Corrupt Fashion-MNIST file.*{images_path.name}"
  ):
    data.get_source(c, "test")


def test_fashion_mnist_missing_says_how_to_install_it(tmp_path, monkeypatch):
  monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path))
  c = config(
      name="fashion_mnist",
      fashion_mnist_dir=str(tmp_path),
      tfds_data_dir=str(tmp_path),
  )
  with pytest.raises(
      FileNotFoundError, match="apt-get install dataset-fashion-mnist"
  ):
    data.get_source(c, "train")


def test_fashion_mnist_from_a_prepared_tfds_copy(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  (tmp_path / "fashion_mnist").mkdir()  # Where a prepared copy would be.
  c = config(
      name="fashion_mnist",
      fashion_mnist_dir=str(tmp_path),
      tfds_data_dir=str(tmp_path),
  )
  with tfds.testing.mock_data(
      num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE
  ):
    images, labels = data.get_source(c, "train").get(np.arange(4))
  assert images.shape == (4, 32, 32, 3) and images[:, 2:30, 2:30].std() > 0
  assert ((0 <= labels) & (labels < 10)).all()


# --- tfds -------------------------------------------------------------------


def test_tfds_under_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  c = config(name="tfds:mnist", image_size=16, tfds_test_split="train")
  with tfds.testing.mock_data(
      num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE
  ):
    source = data.get_source(c, "test")
    images, labels = source.get(np.array([0, 5, 2]))
    again, _ = source.get(np.array([2]))
  assert len(source) == 6 and source.num_classes == 10
  assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
  assert labels.dtype == np.int32 and ((0 <= labels) & (labels < 10)).all()
  # Grey digits become three equal channels.
  np.testing.assert_array_equal(images[..., 0], images[..., 2])
  assert images.std() > 0
  np.testing.assert_array_equal(again[0], images[2])


def test_tfds_unprepared_dataset_says_how_to_prepare_it(tmp_path):
  c = config(name="tfds:mnist", tfds_data_dir=str(tmp_path))
  with pytest.raises(FileNotFoundError, match="tfds build mnist"):
    data.get_source(c, "train")


# --- folder -----------------------------------------------------------------


def _write(path, size, color=(10, 200, 30)):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.new("RGB", size, color).save(path)


def test_folder_splits_readable_images_disjointly(tmp_path):
  expected = set()
  for i in range(12):
    extension = "PNG" if i == 5 else "png"
    path = tmp_path / ("nested" if i % 3 else "") / f"im{i}.{extension}"
    _write(path, (40, 30), (i * 20, 0, 0))
    expected.add(path)
  (tmp_path / "broken.jpg").write_bytes(b"not an image")
  (tmp_path / "notes.txt").write_text("not an image either")
  c = config(name=f"folder:{tmp_path}", image_size=16, folder_test_fraction=0.3)
  with pytest.warns(UserWarning, match="Skipped 1 unreadable"):
    train = data.get_source(c, "train")
  with pytest.warns(UserWarning, match="Skipped 1 unreadable"):
    test = data.get_source(c, "test")
  assert len(test) >= 1 and len(train) >= 1
  assert not set(train.files) & set(test.files)
  assert set(train.files) | set(test.files) == expected
  images, labels = train.get(np.arange(len(train)))
  assert images.shape == (len(train), 16, 16, 3) and train.num_classes == 0
  assert not labels.any()
  with pytest.warns(UserWarning):
    assert data.get_source(c, "train").files == train.files


def test_folder_class_subfolders_are_labels(tmp_path):
  for i in range(12):
    kind = ("coat", "bag", "sandal")[i % 3]
    _write(tmp_path / "root" / kind / f"{i}.png", (16, 16), (i * 20, 0, 0))
  c = config(name=f"folder:{tmp_path / 'root'}", image_size=8)
  for split in ("train", "test"):
    source = data.get_source(c, split)
    assert source.class_names == ("bag", "coat", "sandal")
    assert source.num_classes == 3
    _, labels = source.get(np.arange(len(source)))
    names = [source.class_names[y] for y in labels]
    assert names == [f.parent.name for f in source.files]
  # One class folder, or images beside the class folders: unlabelled.
  _write(tmp_path / "root" / "stray.png", (16, 16))
  assert data.get_source(c, "train").num_classes == 0
  _write(tmp_path / "one" / "coat" / "a.png", (16, 16))
  _write(tmp_path / "one" / "coat" / "b.png", (16, 16))
  c = config(name=f"folder:{tmp_path / 'one'}", image_size=8)
  assert data.get_source(c, "train").num_classes == 0


def test_folder_splits_are_never_empty(tmp_path):
  _write(tmp_path / "a.png", (16, 16))
  _write(tmp_path / "b.png", (16, 16))
  for fraction in (1e-6, 1 - 1e-6):
    c = config(
        name=f"folder:{tmp_path}", image_size=8, folder_test_fraction=fraction
    )
    train, test = data.get_source(c, "train"), data.get_source(c, "test")
    assert len(train) == len(test) == 1 and train.files != test.files


def test_folder_center_crops(tmp_path):
  image = np.zeros((20, 40, 3), np.uint8)
  image[:, 10:30] = (0, 255, 0)  # Green centre square, black sides.
  Image.fromarray(image).save(tmp_path / "wide.png")
  with pytest.warns(UserWarning, match="single readable image"):
    train, _ = data.load_images(
        config(name=f"folder:{tmp_path}", image_size=8), "train"
    )
  green = np.broadcast_to([0, 255, 0], (8, 8, 3))
  # Bicubic support reaches a little past the crop box into the black sides.
  np.testing.assert_array_equal(train[0, :, 1:-1], green[:, 1:-1])
  np.testing.assert_allclose(train[0], green, atol=25)


def test_folder_bad_inputs(tmp_path):
  missing = tmp_path / "nope"
  with pytest.raises(FileNotFoundError, match=str(missing)):
    data.get_source(config(name=f"folder:{missing}"), "train")
  (tmp_path / "readme.txt").write_text("no images here")
  with pytest.raises(ValueError, match="No images"):
    data.get_source(config(name=f"folder:{tmp_path}"), "train")
  (tmp_path / "bad.png").write_bytes(b"garbage")
  with pytest.warns(UserWarning, match="Skipped 1"):
    with pytest.raises(ValueError, match="None of the images"):
      data.get_source(config(name=f"folder:{tmp_path}"), "train")
  _write(tmp_path / "small.png", (12, 20))
  with pytest.raises(ValueError, match=r"small\.png.*12x20.*image_size 16"):
    data.get_source(config(name=f"folder:{tmp_path}", image_size=16), "train")


def test_folder_upscales_small_images_only_when_allowed(tmp_path):
  _write(tmp_path / "a.png", (12, 12))
  _write(tmp_path / "b.png", (40, 40))
  c = config(
      name=f"folder:{tmp_path}", image_size=16, folder_allow_upscale=True
  )
  with pytest.warns(UserWarning, match="Upscaling 1 image"):
    source = data.get_source(c, "train")
  assert source.get(np.arange(len(source)))[0].shape[1:] == (16, 16, 3)


# --- batch_indices, process_slice, load_images -------------------------------


def test_batch_indices_cover_every_index_once_per_epoch():
  num_examples, batch_size = 10, 4  # Steps 2 and 4 straddle epochs.
  stream = np.concatenate(
      [data.batch_indices(s, batch_size, num_examples, 3) for s in range(5)]
  )
  epochs = stream.reshape(2, num_examples)
  for epoch in epochs:
    np.testing.assert_array_equal(np.sort(epoch), np.arange(num_examples))
  assert not np.array_equal(epochs[0], epochs[1])
  assert not np.array_equal(epochs[0], np.arange(num_examples))


def test_batch_indices_are_a_pure_function_of_step_and_seed():
  stream = np.concatenate([data.batch_indices(s, 4, 10, 3) for s in range(5)])
  np.testing.assert_array_equal(data.batch_indices(2, 4, 10, 3), stream[8:12])
  assert not np.array_equal(data.batch_indices(2, 4, 10, 4), stream[8:12])
  # A batch larger than the dataset spans several whole epochs.
  big = data.batch_indices(1, 25, 10, 3)
  np.testing.assert_array_equal(np.sort(big[5:15]), np.arange(10))
  same_positions = [data.batch_indices(s, 5, 10, 3) for s in (6, 7)]
  np.testing.assert_array_equal(big[5:15], np.concatenate(same_positions))
  with pytest.raises(ValueError, match="batch_size > 0"):
    data.batch_indices(0, 0, 10, 0)


def test_process_slice_shards_contiguously():
  batch = np.arange(100, 112)
  shards = [data.process_slice(batch, i, 4) for i in range(4)]
  np.testing.assert_array_equal(np.concatenate(shards), batch)
  np.testing.assert_array_equal(shards[1], [103, 104, 105])
  with pytest.raises(ValueError, match="not divisible"):
    data.process_slice(batch, 0, 5)
  with pytest.raises(ValueError, match="process_index"):
    data.process_slice(batch, 4, 4)


def test_load_images():
  c = config(image_size=8, num_test=5)
  images, labels = data.load_images(c, "test")
  assert images.shape == (5, 8, 8, 3) and labels.shape == (5,)
  first, _ = data.load_images(c, "test", num=2)
  np.testing.assert_array_equal(first, images[:2])
  with pytest.raises(ValueError, match="has 5"):
    data.load_images(c, "test", num=6)


def test_atomic_path_replaces_only_on_success(tmp_path):
  path = tmp_path / "results.json"
  path.write_text("old")
  with pytest.raises(RuntimeError):
    with files.atomic_path(str(path)) as tmp:
      assert tmp.endswith(".tmp.json")
      with open(tmp, "w") as f:
        f.write("half")
      raise RuntimeError("killed mid-write")
  assert path.read_text() == "old" and os.listdir(tmp_path) == ["results.json"]
  with files.atomic_path(str(path)) as tmp, open(tmp, "w") as f:
    f.write("new")
  assert path.read_text() == "new"
