"""supersim.notebook: the rounding of bounds quoted in the prose."""

import pytest
import torch

from supersim.notebook import ceil_to, floor_to


@pytest.mark.parametrize("x", [0.98765, 0.12301, 3.0, -0.4449, 12.5])
def test_bounds_are_rounded_the_safe_way(x):
    low, high = floor_to(x, 2), ceil_to(x, 2)
    assert low <= x <= high  # "at least low" and "at most high" both stay true
    assert high - low <= 0.01 + 1e-12


def test_known_values():
    assert floor_to(0.98765, 3) == 0.987 and ceil_to(0.98712, 3) == 0.988
    assert floor_to(-0.4449, 2) == -0.45 and ceil_to(-0.4449, 2) == -0.44
    assert floor_to(87.9, 0) == 87.0 and ceil_to(torch.tensor(12.01), 0) == 13.0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: floor_to(float("nan"), 2), "x"),
        (lambda: ceil_to("0.5", 2), "x"),
        (lambda: floor_to(0.5, 1.5), "digits"),
        (lambda: ceil_to(0.5, True), "digits"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
