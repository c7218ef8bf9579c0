import numpy as np
import pytest
from PIL import Image

from maskgit_edit import data
from maskgit_edit.data import photos
from maskgit_edit.data import shapes


def config(**kw):
  c = data.default_data_config()
  c.update(kw)
  return c


def test_shapes_deterministic_and_splits_disjoint():
  c = config(image_size=16, num_train=8, num_test=8)
  train, test = data.get_source(c, "train"), data.get_source(c, "test")
  a, la = train.get(np.arange(4))
  b, lb = train.get(np.array([0, 1, 2, 3]))
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(la, lb)
  t, _ = test.get(np.arange(4))
  assert a.shape == (4, 16, 16, 3) and a.dtype == np.uint8
  assert not any(np.array_equal(x, y) for x in a for y in t)


def test_shapes_label_is_the_largest_object():
  for index in range(20):
    scene = shapes.describe_scene(0, "train", index)
    largest = max(scene.objects, key=lambda o: o.radius)
    assert scene.label == largest.kind


def test_photos_hold_out_whole_photographs():
  c = config(name="photos", image_size=16, num_train=32, num_test=8)
  train, test = data.get_source(c, "train"), data.get_source(c, "test")
  assert not set(train.photos) & set(test.photos)
  images, labels = test.get(np.arange(8))
  assert images.shape == (8, 16, 16, 3)
  assert labels.max() < test.num_classes == len(photos.TEST_PHOTOS)


def test_batch_indices_cover_each_epoch_and_are_pure():
  n, b = 10, 4
  stream = np.concatenate([data.batch_indices(s, b, n, 3) for s in range(5)])
  np.testing.assert_array_equal(np.sort(stream[:10]), np.arange(10))
  np.testing.assert_array_equal(np.sort(stream[10:20]), np.arange(10))
  np.testing.assert_array_equal(data.batch_indices(2, b, n, 3), stream[8:12])
  assert not np.array_equal(stream[:10], stream[10:20])


def test_process_slice():
  batch = np.arange(8)
  np.testing.assert_array_equal(data.process_slice(batch, 1, 4), [2, 3])
  with pytest.raises(ValueError, match="divisible"):
    data.process_slice(batch, 0, 3)


def test_unknown_source_and_split():
  with pytest.raises(ValueError, match="Unknown data source"):
    data.get_source(config(name="mnist"), "train")
  with pytest.raises(ValueError, match="Unknown split"):
    data.get_source(config(), "validation")


def _write(path, size, color=(10, 200, 30)):
  Image.new("RGB", size, color).save(path)


def test_folder_source(tmp_path):
  for i in range(12):
    _write(tmp_path / f"im{i}.png", (40, 30), (i * 20, 0, 0))
  (tmp_path / "broken.png").write_bytes(b"not an image")
  c = config(name=f"folder:{tmp_path}", image_size=16, folder_test_fraction=0.3)
  with pytest.warns(UserWarning, match="Skipped 1 unreadable"):
    train = data.get_source(c, "train")
  test = data.get_source(c, "test")
  assert len(train) + len(test) in (12, 13) and len(test) >= 1
  assert not set(train.files) & set(test.files)
  images, labels = train.get(np.arange(len(train)))
  assert images.shape[1:] == (16, 16, 3) and not labels.any()


def test_folder_bad_inputs(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    data.get_source(config(name=f"folder:{tmp_path / 'nope'}"), "train")
  with pytest.raises(ValueError, match="No images"):
    data.get_source(config(name=f"folder:{tmp_path}"), "train")
  _write(tmp_path / "small.png", (8, 8))
  with pytest.warns(UserWarning, match="single image"):
    with pytest.raises(ValueError, match="smaller than image_size"):
      data.get_source(config(name=f"folder:{tmp_path}", image_size=16),
                      "train")


def test_tfds_under_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  c = config(name="tfds:mnist", image_size=16)
  with tfds.testing.mock_data(num_examples=6,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    source = data.get_source(c, "train")
    images, labels = source.get(np.arange(3))
  assert images.shape == (3, 16, 16, 3) and source.num_classes == 10
  assert labels.dtype == np.int32
