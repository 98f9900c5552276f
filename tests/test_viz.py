"""Tests for course_lib.viz: grid geometry and value mapping, input errors that name the fix, that the
plots draw what they were given (checked on the matplotlib artists), and that animations are capped
and leave no figure open."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

from course_lib import viz  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ============================================================================ image_grid
def test_image_grid_geometry_and_tile_placement():
    b, h, w, p = 5, 4, 3, 1
    x = torch.stack([torch.full((1, h, w), i / 10) for i in range(b)])  # image i is constant i/10
    grid = viz.image_grid(x, nrow=2, padding=p, pad_value=0.5)
    rows, cols = 3, 2
    assert grid.shape == (rows * (h + p) + p, cols * (w + p) + p)
    assert grid.dtype == np.float32
    for i in range(b):
        r, c = divmod(i, cols)
        tile = grid[p + r * (h + p) : p + r * (h + p) + h, p + c * (w + p) : p + c * (w + p) + w]
        np.testing.assert_allclose(tile, i / 10, atol=1e-7)
    # borders and the empty sixth slot hold pad_value
    assert np.all(grid[0] == 0.5) and np.all(grid[:, 0] == 0.5)
    empty = grid[p + 2 * (h + p) : p + 2 * (h + p) + h, p + (w + p) : p + (w + p) + w]
    assert np.all(empty == 0.5)


def test_image_grid_default_is_near_square_and_nrow_is_capped():
    x = torch.rand(10, 1, 2, 2, generator=_gen())
    assert viz.image_grid(x, padding=0).shape == (3 * 2, 4 * 2)  # ceil(sqrt(10)) = 4 per row
    assert viz.image_grid(x[:3], nrow=8, padding=0).shape == (2, 3 * 2)  # nrow > B: one row


def test_image_grid_rgb_keeps_channels():
    x = torch.zeros(2, 3, 4, 4)
    x[:, 0] = 1.0  # pure red
    grid = viz.image_grid(x, padding=0)
    assert grid.shape == (4, 8, 3)
    np.testing.assert_array_equal(grid[..., 0], 1.0)
    np.testing.assert_array_equal(grid[..., 1:], 0.0)


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((6, 5, 5), (2 * 6 + 1, 3 * 6 + 1)),  # (B, H, W): 6 grayscale images
        ((3, 5, 5), (7, 7, 3)),  # one RGB image (C, H, W)
        ((1, 5, 5), (7, 7)),  # one grayscale image (C, H, W)
        ((5, 5), (7, 7)),  # (H, W)
    ],
)
def test_image_grid_accepts_documented_shapes(shape, expected):
    x = torch.rand(shape, generator=_gen())
    assert viz.image_grid(x, padding=1).shape == expected


@pytest.mark.parametrize(
    "shape, match",
    [
        ((4, 2, 8, 8), r"\(B, C, H, W\) with C in \{1, 3\}"),
        ((4, 8, 8, 3), r"permute\(0, 3, 1, 2\)"),
        ((2, 4, 1, 8, 8), r"expected \(B, C, H, W\)"),
        ((8,), r"expected \(B, C, H, W\)"),
        ((0, 1, 8, 8), "no images"),
    ],
)
def test_image_grid_rejects_bad_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        viz.image_grid(torch.rand(shape))


def test_image_grid_value_ranges_map_to_unit():
    sym = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 1, 1, 3)
    np.testing.assert_allclose(viz.image_grid(sym, padding=0), [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(viz.image_grid(sym, padding=0, value_range="symmetric"), [[0.0, 0.5, 1.0]])
    counts = torch.tensor([0.0, 8.0, 16.0]).reshape(1, 1, 1, 3)
    np.testing.assert_allclose(viz.image_grid(counts, padding=0, value_range="counts", levels=17), [[0.0, 0.5, 1.0]])
    # levels alone means counts
    np.testing.assert_allclose(viz.image_grid(counts, padding=0, levels=17), [[0.0, 0.5, 1.0]])
    unit = torch.tensor([0.0, 0.25, 1.0]).reshape(1, 1, 1, 3)
    np.testing.assert_allclose(viz.image_grid(unit, padding=0), [[0.0, 0.25, 1.0]])


def test_image_grid_0_255_images_get_an_error_naming_the_fix():
    x = torch.randint(0, 256, (4, 1, 8, 8), generator=_gen()).float()
    with pytest.raises(ValueError, match="divide by 255"):
        viz.image_grid(x)
    with pytest.raises(ValueError, match="divide by 255"):
        viz.image_grid(x, value_range="unit")
    with pytest.raises(TypeError, match=r"\.float\(\) / 255"):
        viz.image_grid(x.to(torch.uint8))


def test_image_grid_counts_need_levels_and_respect_them():
    x = torch.tensor([0.0, 16.0]).reshape(1, 1, 1, 2)
    with pytest.raises(ValueError, match="levels"):
        viz.image_grid(x, value_range="counts")
    with pytest.raises(ValueError, match="integer levels"):
        viz.image_grid(x, value_range="counts", levels=10)
    with pytest.raises(ValueError, match="only applies to value_range='counts'"):
        viz.image_grid(x / 16, value_range="unit", levels=17)


def test_image_grid_out_of_range_values_error_or_clip_explicitly():
    x = torch.randn(4, 1, 8, 8, generator=_gen()) * 3  # like a diffusion model's x_t
    with pytest.raises(ValueError, match="clip=True"):
        viz.image_grid(x)
    with pytest.raises(ValueError):
        viz.image_grid(x, value_range="symmetric")
    with pytest.raises(ValueError, match="explicit value_range"):
        viz.image_grid(x, clip=True)
    grid = viz.image_grid(x, value_range="symmetric", clip=True, padding=0)
    expected = ((x.clamp(-1, 1) + 1) / 2)
    np.testing.assert_allclose(grid[:8, :8], expected[0, 0].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        viz.image_grid(torch.full((1, 1, 2, 2), float("nan")), value_range="unit", clip=True)


def test_image_grid_accepts_numpy_and_grad_tensors_and_checks_pad_value():
    x = torch.rand(2, 1, 3, 3, generator=_gen(), requires_grad=True)
    np.testing.assert_allclose(viz.image_grid(x), viz.image_grid(x.detach().numpy()))
    with pytest.raises(ValueError, match="pad_value"):
        viz.image_grid(x, pad_value=2)
    with pytest.raises(ValueError, match="nrow"):
        viz.image_grid(x, nrow=0)
    with pytest.raises(TypeError, match="torch.Tensor or a NumPy array"):
        viz.image_grid([[0.0, 1.0]])


# ============================================================================ show_images
def test_show_images_draws_the_grid_with_fixed_color_limits():
    x = torch.rand(6, 1, 5, 5, generator=_gen()) * 0.2  # dark images must stay dark (no auto-stretch)
    fig = viz.show_images(x, nrow=3, title="digits")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "digits"
    image = ax.images[0]
    assert image.get_clim() == (0.0, 1.0)
    np.testing.assert_allclose(np.asarray(image.get_array()), viz.image_grid(x, nrow=3))


def test_show_images_draws_into_a_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    out = viz.show_images(torch.rand(4, 3, 4, 4, generator=_gen()), ax=right)
    assert out is fig
    assert len(right.images) == 1 and len(left.images) == 0
    assert right.images[0].get_array().shape[-1] == 3


def test_show_images_with_labels_captions_every_image():
    x = torch.rand(5, 1, 6, 6, generator=_gen())
    fig = viz.show_images(x, labels=torch.tensor([3, 1, 4, 1, 5]), title="labelled")
    ax = fig.axes[0]
    panels = [child for child in ax.child_axes]
    assert [p.get_title() for p in panels] == ["3", "1", "4", "1", "5"]
    for i, panel in enumerate(panels):
        np.testing.assert_allclose(np.asarray(panel.images[0].get_array()), x[i, 0].numpy())
    with pytest.raises(ValueError, match="one caption per image"):
        viz.show_images(x, labels=["a", "b"])


# ============================================================================ plot_history
class _History:
    def __init__(self, steps, values):
        self.steps = steps
        self.values = values


def test_plot_history_raw_and_moving_average():
    rng = np.random.default_rng(0)
    loss = list(2 * np.exp(-np.arange(100) / 30) + 0.1 * rng.random(100))
    hist = _History(list(range(0, 1000, 10)), {"loss": loss, "kl": list(0.5 + 0.0 * np.arange(100))})
    fig = viz.plot_history(hist, keys="loss", smooth=7)
    ax = fig.axes[0]
    raw, avg = ax.get_lines()
    np.testing.assert_array_equal(raw.get_xdata(), hist.steps)
    np.testing.assert_allclose(raw.get_ydata(), loss)
    assert raw.get_alpha() < 0.5
    full_windows = np.convolve(loss, np.ones(7) / 7, mode="valid")
    np.testing.assert_allclose(avg.get_ydata()[6:], full_windows)
    np.testing.assert_allclose(avg.get_ydata()[:3], np.cumsum(loss[:3]) / np.arange(1, 4))  # short start


def test_plot_history_all_keys_from_a_dict_and_smooth_one():
    fig = viz.plot_history({"d_loss": [1.0, 0.5, 0.7], "g_loss": [2.0, 1.5, 1.0]}, smooth=1)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2  # smooth=1: raw values only
    np.testing.assert_array_equal(lines[0].get_xdata(), [0, 1, 2])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["d_loss", "g_loss"]


def test_plot_history_skips_unlogged_nan_rows():
    hist = _History([10, 20, 30, 40], {"loss": [4.0, 3.0, 2.0, 1.0], "val": [float("nan"), 2.5, float("nan"), 1.5]})
    fig = viz.plot_history(hist, keys="val", smooth=1)
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [20, 40])
    np.testing.assert_array_equal(line.get_ydata(), [2.5, 1.5])


def test_plot_history_reads_the_course_history():
    train = pytest.importorskip("course_lib.train")
    hist = train.History()
    for step in range(1, 41):
        hist.log(step, {"loss": 1.0 / step} if step % 4 else {"loss": 1.0 / step, "val": 2.0 / step})
    fig = viz.plot_history(hist, smooth=1)
    loss, val = fig.axes[0].get_lines()
    np.testing.assert_array_equal(loss.get_xdata(), np.arange(1, 41))
    np.testing.assert_array_equal(val.get_xdata(), np.arange(4, 41, 4))


def test_plot_history_errors():
    with pytest.raises(ValueError, match="available"):
        viz.plot_history({"loss": [1.0]}, keys="elbo")
    with pytest.raises(ValueError, match="logy=False"):
        viz.plot_history({"loss": [1.0, -0.5]}, logy=True)
    with pytest.raises(ValueError, match="inconsistent"):
        viz.plot_history(_History([0, 1], {"loss": [1.0]}))

    class Result:
        history = None

    with pytest.raises(TypeError, match="result.history"):
        viz.plot_history(Result())


# ============================================================================ 2-D plots
def test_plot_density_2d_draws_exp_log_prob_the_right_way_up():
    mean = torch.tensor([2.0, -1.0])
    dist = torch.distributions.MultivariateNormal(mean, 0.25 * torch.eye(2))
    grid = 81
    fig = viz.plot_density_2d(dist.log_prob, xlim=(-4, 4), ylim=(-4, 4), grid=grid, samples=dist.sample((50,)))
    ax = fig.axes[0]
    density = np.asarray(ax.images[0].get_array())
    assert density.shape == (grid, grid)
    # a density integrates to ~1 over the plotted square
    cell = (8 / (grid - 1)) ** 2
    assert abs(density.sum() * cell - 1) < 0.02
    # the mode sits at (x, y) = (2, -1): column -> x, row -> y with origin="lower"
    row, col = np.unravel_index(density.argmax(), density.shape)
    xs = np.linspace(-4, 4, grid)
    assert (xs[col], xs[row]) == pytest.approx((2.0, -1.0))
    assert ax.images[0].origin == "lower"
    assert len([c for c in ax.collections if isinstance(c, PathCollection)]) == 1  # the samples


def test_plot_density_2d_checks_the_function():
    with pytest.raises(ValueError, match=r"squeeze\(-1\)"):
        viz.plot_density_2d(lambda z: torch.zeros(len(z), 1), grid=10)
    with pytest.raises(ValueError, match="NaN"):
        viz.plot_density_2d(lambda z: torch.full((len(z),), float("nan")), grid=10)
    with pytest.raises(ValueError, match="xlim"):
        viz.plot_density_2d(lambda z: torch.zeros(len(z)), xlim=(3, -3), grid=10)
    # -inf (zero density) is fine
    fig = viz.plot_density_2d(lambda z: torch.where(z[:, 0] > 0, 0.0, -math.inf), grid=10)
    assert np.asarray(fig.axes[0].images[0].get_array()).min() == 0.0


def test_scatter_2d_classes_limits_and_errors():
    pts = torch.randn(300, 2, generator=_gen())
    labels = torch.arange(300) % 3
    fig = viz.scatter_2d(pts, labels=labels, lim=5, title="classes")
    ax = fig.axes[0]
    collections = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(collections) == 3
    assert sum(len(c.get_offsets()) for c in collections) == 300
    np.testing.assert_allclose(collections[1].get_offsets(), pts[labels == 1].numpy())
    assert ax.get_xlim() == (-5, 5) and ax.get_ylim() == (-5, 5)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        viz.scatter_2d(torch.randn(10, 3))
    with pytest.raises(ValueError, match="NaN"):
        viz.scatter_2d(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="10 points"):
        viz.scatter_2d(torch.randn(10, 2), labels=[0, 1])


def test_scatter_2d_continuous_labels_get_a_colorbar():
    pts = torch.randn(50, 2, generator=_gen())
    fig = viz.scatter_2d(pts, labels=torch.linspace(0, 1, 50))
    assert len(fig.axes) == 2  # the plot and its colour bar


def test_plot_vector_field_quiver_matches_the_field():
    def field(z):
        return torch.stack([-z[:, 1], 2 * z[:, 0]], dim=1)

    fig = viz.plot_vector_field(field, xlim=(-2, 2), ylim=(-1, 1), grid=5)
    quiver = next(c for c in fig.axes[0].collections if isinstance(c, Quiver))
    xy = np.asarray(quiver.get_offsets())
    np.testing.assert_allclose(quiver.U, -xy[:, 1], atol=1e-6)
    np.testing.assert_allclose(quiver.V, 2 * xy[:, 0], atol=1e-6)
    assert xy[:, 0].min() == pytest.approx(-2) and xy[:, 1].max() == pytest.approx(1)

    fig = viz.plot_vector_field(field, grid=6, normalize=True)
    quiver = next(c for c in fig.axes[0].collections if isinstance(c, Quiver))
    lengths = np.hypot(quiver.U, quiver.V)
    np.testing.assert_allclose(lengths[lengths > 0], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 2\) -> \(N, 2\)"):
        viz.plot_vector_field(lambda z: z[:, 0], grid=4)


def test_plot_trajectory_2d_draws_every_path_and_its_ends():
    traj = torch.cumsum(torch.randn(12, 7, 2, generator=_gen()), dim=0)
    fig = viz.plot_trajectory_2d(traj)
    ax = fig.axes[0]
    lines = next(c for c in ax.collections if isinstance(c, LineCollection))
    segments = lines.get_segments()
    assert len(segments) == 7
    np.testing.assert_allclose(segments[3], traj[:, 3].numpy())
    starts, ends = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(starts.get_offsets(), traj[0].numpy())
    np.testing.assert_allclose(ends.get_offsets(), traj[-1].numpy())
    fig = viz.plot_trajectory_2d(list(traj), max_paths=3)
    assert len(next(c for c in fig.axes[0].collections if isinstance(c, LineCollection)).get_segments()) == 3
    with pytest.raises(ValueError, match="same points"):
        viz.plot_trajectory_2d([torch.zeros(3, 2), torch.zeros(4, 2)])


# ============================================================================ animations
def _num_frames(html) -> int:
    return html.data.count("data:image/png;base64")


def test_animate_points_is_capped_and_closes_its_figure():
    frames = torch.randn(30, 20, 2, generator=_gen()) * torch.linspace(2, 0.1, 30)[:, None, None]
    before = plt.get_fignums()
    html = viz.animate_points(frames, max_frames=5, figsize=(2, 2), title="sampling")
    assert plt.get_fignums() == before
    assert "<script" in html.data
    assert _num_frames(html) == 5
    html = viz.animate_points([f for f in frames[:3]], figsize=(2, 2), frame_labels=["t=2", "t=1", "t=0"])
    assert _num_frames(html) == 3
    with pytest.raises(ValueError, match=r"\(T, N, 2\)"):
        viz.animate_points(torch.randn(5, 2))
    with pytest.raises(ValueError, match="one label per frame"):
        viz.animate_points(frames, frame_labels=["a"])


def test_animate_images_is_capped_and_closes_its_figure():
    frames = torch.rand(12, 4, 1, 6, 6, generator=_gen()) * 2 - 1
    before = plt.get_fignums()
    html = viz.animate_images(frames, max_frames=4, figsize=(2, 2))
    assert plt.get_fignums() == before
    assert _num_frames(html) == 4
    html = viz.animate_images([f for f in frames[:2]], figsize=(2, 2))
    assert _num_frames(html) == 2
    with pytest.raises(ValueError, match=r"unsqueeze\(1\)"):
        viz.animate_images(torch.rand(5, 1, 6, 6))
    with pytest.raises(ValueError, match="divide by 255"):
        viz.animate_images(torch.full((2, 1, 1, 4, 4), 200.0))
    assert plt.get_fignums() == before


def test_subsampling_keeps_first_and_last_frames():
    idx = viz._subsample_indices(1000, 60)
    assert len(idx) == 60 and idx[0] == 0 and idx[-1] == 999
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(viz._subsample_indices(7, 60), np.arange(7))
