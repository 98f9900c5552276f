# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: nbgrader,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # Exercises 00 · Setup and tour
#
# Three short warm-up questions on the habits every later notebook relies on: budgets that shrink in
# quick mode, a device chosen in one place, and the course's offline data (5 points in total).
#
# **How exercises work.** Each question has an answer cell containing
#
# ```python
# # YOUR CODE HERE
# raise NotImplementedError()
# ```
#
# Replace those two lines with your answer, then run the test cell below it. A test cell that runs
# without an error means your answer passes the visible checks; when your work is graded, a few
# hidden checks are added and each test cell is worth the points shown. Test cells are locked: do
# not edit them (the grader restores them anyway). Run the notebook from the top (*Run → Run All
# Cells*) before you hand it in, and keep each answer quick: graded notebooks run in quick mode.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import torch

from course_lib import config, data, device

print(f"mode: {config.mode()}, device: {device.describe(device.get_device())}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · Budgets (1 point)
#
# A training loop in some notebook should run **1,500** steps in full mode and **15** in quick mode.
# Complete `training_steps()` so that it returns that number. Use `config.budget`; do not test the
# mode yourself (with `config.is_quick()` or `os.environ`) and do not hard-code one of the numbers.
# The grader calls your function once in each mode.

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def training_steps() -> int:
    """Number of training steps: 1,500 in full mode, 15 in quick mode."""
    ### BEGIN SOLUTION
    return config.budget(full=1500, quick=15)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# Hint: return config.budget(full=..., quick=...) from inside the function; budget reads
#   COURSE_QUICK every time it is called, so one line serves both modes.
steps = training_steps()
assert isinstance(steps, int), f"training_steps() should return an int, got {type(steps).__name__}"
expected = config.budget(full=1500, quick=15)
assert steps == expected, f"in {config.mode()} mode training_steps() should return {expected}, got {steps}"
print(f"Q1 passes the visible check: {steps} steps in {config.mode()} mode")
### BEGIN HIDDEN TESTS
import os as _os

_saved_quick = _os.environ.get("COURSE_QUICK")
try:
    _os.environ["COURSE_QUICK"] = "0"
    assert training_steps() == 1500, "in full mode training_steps() should return 1500"
    _os.environ["COURSE_QUICK"] = "1"
    assert training_steps() == 15, "in quick mode training_steps() should return 15"
finally:
    if _saved_quick is None:
        _os.environ.pop("COURSE_QUICK", None)
    else:
        _os.environ["COURSE_QUICK"] = _saved_quick
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · The device (1 point)
#
# Complete `to_course_device(x)` so that it returns the tensor `x` on the course's device, whatever
# machine the notebook runs on: a CUDA GPU, an Apple GPU or the CPU. Ask `course_lib.device` for the
# device; never name a GPU device yourself, because the same notebook must also run on a
# laptop without a GPU (and the grader forces the CPU).

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def to_course_device(x: torch.Tensor) -> torch.Tensor:
    """Return ``x`` on the device chosen by ``course_lib.device.get_device()`` (values unchanged)."""
    ### BEGIN SOLUTION
    return x.to(device.get_device())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# Hint: device.get_device() returns the device to use, and x.to(some_device) returns x on it.
x = torch.arange(6.0).reshape(2, 3)
moved = to_course_device(x)
assert isinstance(moved, torch.Tensor), f"to_course_device should return a tensor, got {type(moved).__name__}"
assert moved.device.type == device.get_device().type, (
    f"the tensor is on {moved.device}, but the course's device is {device.get_device()}"
)
assert moved.shape == x.shape and moved.dtype == x.dtype, "moving a tensor must not change its shape or dtype"
assert torch.equal(moved.cpu(), x), "moving a tensor must not change its values"
print(f"Q2 passes the visible check: the tensor is on {moved.device}")
### BEGIN HIDDEN TESTS
import inspect as _inspect
import os as _os

try:
    _source = _inspect.getsource(to_course_device)
except (OSError, TypeError):
    _source = ""
assert "cuda" not in _source.split('"""')[-1], "do not hard-code 'cuda': ask device.get_device()"
_saved_device = _os.environ.get("COURSE_DEVICE")
try:
    _os.environ["COURSE_DEVICE"] = "cpu"
    assert to_course_device(torch.ones(3)).device.type == "cpu", "with COURSE_DEVICE=cpu the tensor belongs on the CPU"
finally:
    if _saved_device is None:
        _os.environ.pop("COURSE_DEVICE", None)
    else:
        _os.environ["COURSE_DEVICE"] = _saved_device
_y = torch.randint(0, 10, (4, 5))
assert torch.equal(to_course_device(_y).cpu(), _y) and to_course_device(_y).dtype == torch.int64
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · A first look at the 8x8 digits (3 points)
#
# `data.digits8x8("train", value_range="unit")` gives 1,000 training images `x` of shape
# `(1000, 1, 8, 8)` with values in $[0, 1]$ and their labels `y` of shape `(1000,)` (digits 0 to 9).
# Compute
#
# * `class_counts`: an `int64` tensor of shape `(10,)` whose entry $k$ is the number of training
#   images of digit $k$ (1 point);
# * `mean_images`: a `float32` tensor of shape `(10, 1, 8, 8)` whose entry $k$ is the average of
#   all training images of digit $k$, i.e. $\bar{x}_k = \frac{1}{N_k} \sum_{n : y_n = k} x_n$
#   (2 points).
#
# The cell after the tests draws the ten mean images: they should look like blurred digits.

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
digits = data.digits8x8("train", value_range="unit")
### BEGIN SOLUTION
class_counts = torch.bincount(digits.y, minlength=10)
mean_images = torch.stack([digits.x[digits.y == k].mean(dim=0) for k in range(10)])
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q3_counts_test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# Hint: torch.bincount(labels, minlength=10) counts how often each label occurs.
assert isinstance(class_counts, torch.Tensor), "class_counts should be a torch tensor"
assert class_counts.shape == (10,), f"class_counts should have shape (10,), got {tuple(class_counts.shape)}"
assert class_counts.dtype == torch.int64, f"class_counts should be int64 (counts are integers), got {class_counts.dtype}"
assert int(class_counts.sum()) == len(digits.y) == 1000, "the counts of the ten classes should add up to 1,000 images"
print("Q3 counts pass the visible check:", class_counts.tolist())
### BEGIN HIDDEN TESTS
_reference = data.digits8x8("train", value_range="unit")
for _k in range(10):
    assert int(class_counts[_k]) == int((_reference.y == _k).sum()), f"wrong count for digit {_k}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "q3_means_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: digits.x[digits.y == k] selects the images of digit k; average them over dim 0 and
#   torch.stack the ten results.
assert isinstance(mean_images, torch.Tensor), "mean_images should be a torch tensor"
assert mean_images.shape == (10, 1, 8, 8), f"mean_images should have shape (10, 1, 8, 8), got {tuple(mean_images.shape)}"
assert mean_images.dtype == torch.float32, f"mean_images should be float32, got {mean_images.dtype}"
assert 0 <= float(mean_images.min()) and float(mean_images.max()) <= 1, "averages of [0, 1] images stay in [0, 1]"
assert torch.allclose(mean_images[0], digits.x[digits.y == 0].mean(dim=0), atol=1e-5), "the mean image of digit 0 is wrong"
print("Q3 mean images pass the visible check")
### BEGIN HIDDEN TESTS
_reference = data.digits8x8("train", value_range="unit")
_one_hot = torch.nn.functional.one_hot(_reference.y, 10).float()  # (N, 10)
_expected = (_one_hot.T @ _reference.x.flatten(1)) / _one_hot.sum(0)[:, None]  # (10, 64): class sums / counts
assert torch.allclose(mean_images.flatten(1), _expected, atol=1e-5), "some class mean images are wrong"
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "q3_show", "locked": true, "schema_version": 3, "solution": false, "task": false}
from course_lib import viz

viz.show_images(mean_images, nrow=10, value_range="unit", labels=list(range(10)), title="mean image of each digit");

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Done.** If every test cell above ran without an error, your answers pass the visible checks.
# Notice how blurred the mean images are: an average is not a sample. A *generative* model has to
# produce sharp images that look like individual digits, which is what the rest of the course is about.
