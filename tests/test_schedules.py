import numpy as np
import pytest

from maskgit_edit.decoding import schedules


@pytest.mark.parametrize(
    "name", ["cosine", "linear", "square", "pow3", "pow0.5", "log", "exp"]
)
def test_decreasing_from_one_to_near_zero(name):
  ratios = np.linspace(0, 1, 11)
  gamma = np.asarray(schedules.mask_ratio(ratios, name, num_unknown=64))
  assert gamma[0] > 0.98  # exp starts at 1 - 1/N, the others at 1.
  assert gamma[-1] < 0.05
  assert np.all(np.diff(gamma) <= 1e-7)


def test_known_values():
  assert float(schedules.mask_ratio(0.5, "cosine")) == pytest.approx(
      np.cos(np.pi / 4)
  )
  assert float(schedules.mask_ratio(0.25, "linear")) == pytest.approx(0.75)
  assert float(schedules.mask_ratio(0.5, "square")) == pytest.approx(0.75)
  assert float(schedules.mask_ratio(0.5, "pow3")) == pytest.approx(0.875)
  assert float(schedules.mask_ratio(0.5, "log", 16)) == pytest.approx(0.25)
  assert float(schedules.mask_ratio(0.5, "exp", 16)) == pytest.approx(0.75)


@pytest.mark.parametrize("name", ["cosin", "pow", "pow-1", "powx", ""])
def test_unknown_schedule_is_an_error(name):
  with pytest.raises(ValueError, match="Unknown mask schedule"):
    schedules.mask_ratio(0.5, name)


def test_log_needs_num_unknown():
  with pytest.raises(ValueError, match="num_unknown"):
    schedules.mask_ratio(0.5, "log")
