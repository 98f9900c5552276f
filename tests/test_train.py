"""train: the one training loop (history, clipping, EMA, NaN guard, checkpoints and exact resume)."""

import copy
import math

import pytest
import torch
from torch import nn

from course_lib.train import EMA, History, NonFiniteLossError, TrainResult, fit

CPU = torch.device("cpu")


class SeededLoader:
    """Re-iterable loader that reshuffles every epoch with its own seeded generator.

    Two loaders made with the same seed yield the same batches in the same order, epoch after epoch,
    which is what an exact resume needs (7 batches per epoch, so 50 steps end mid-epoch).
    """

    def __init__(self, x, y, batch_size=10, seed=0):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return len(self.x) // self.batch_size

    def __iter__(self):
        order = torch.randperm(len(self.x), generator=self.generator)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]


def regression_data(n=70, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3 + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def noisy_mse(model, batch):
    """Uses the global RNG (input noise) as well as the model's dropout: resume must restore both."""
    x, y = batch
    pred = model(x + 0.01 * torch.randn_like(x))
    loss = ((pred - y) ** 2).mean()
    return loss, {"abs_err": (pred - y).abs().mean()}


def small_mlp():
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------- optimisation itself


def test_fit_reaches_the_least_squares_solution():
    x, y = regression_data(n=256)
    model = nn.Linear(3, 1)
    result = fit(model, mse, [(x, y)], steps=600, lr=0.05, device=CPU, progress=False)
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution.flatten()
    fitted = torch.cat([model.weight.detach().flatten(), model.bias.detach()])
    torch.testing.assert_close(fitted, solution, atol=2e-3, rtol=0)
    assert isinstance(result, TrainResult) and result.model is model and result.steps == 600
    assert result.history.last("loss") < result.history.values["loss"][0]
    assert not model.training, "fit returns the model in eval mode"


def test_history_rows_average_the_steps_in_between():
    model = nn.Linear(3, 1)
    x, y = regression_data()
    calls = []

    def loss_fn(m, batch):
        calls.append(None)
        return mse(m, batch), {"k": float(len(calls)), **({"late": 1.0} if len(calls) > 20 else {})}

    seen = []
    result = fit(
        model, loss_fn, SeededLoader(x, y), steps=25, log_every=10, device=CPU, progress=False,
        callback=lambda step, m, h: seen.append((step, len(h), m.training)),
    )
    h = result.history
    assert h.steps == [10, 20, 25]
    assert all(len(column) == 3 for column in h.values.values())
    assert h.values["k"] == [5.5, 15.5, 23.0]  # means of 1..10, 11..20, 21..25
    assert math.isnan(h.values["late"][0]) and h.values["late"][2] == 1.0
    assert "grad_norm" not in h, "grad_norm is logged only when clipping"
    assert seen == [(10, 1, True), (20, 2, True), (25, 3, True)]


def test_loader_is_cycled_over_epochs():
    x, y = regression_data(n=30)
    batches = [(x[i : i + 10], y[i : i + 10]) for i in range(0, 30, 10)]
    counts = []
    fit(nn.Linear(3, 1), lambda m, b: (counts.append(b[0][0, 0].item()), mse(m, b))[1], batches,
        steps=7, device=CPU, progress=False)
    assert counts == [x[0, 0].item(), x[10, 0].item(), x[20, 0].item()] * 2 + [x[0, 0].item()]


# ---------------------------------------------------------------- clipping


def test_clipping_bounds_every_update():
    torch.manual_seed(0)
    model = nn.Linear(4, 4)

    def steep(m, batch):
        return 1e3 * sum((p**2).sum() for p in m.parameters())

    snapshots = [params_of(model)]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    result = fit(model, steep, [None], steps=5, optimizer=optimizer, clip_grad_norm=1e-3, log_every=1,
                 device=CPU, progress=False, callback=lambda s, m, h: snapshots.append(params_of(m)))
    for before, after in zip(snapshots, snapshots[1:]):
        moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before)))
        assert moved <= 1e-3 * (1 + 1e-4), f"an SGD step with lr=1 and clip 1e-3 moved the weights by {moved}"
    assert len(result.history.values["grad_norm"]) == 5
    assert min(result.history.values["grad_norm"]) > 100, "grad_norm is the norm before clipping"

    unclipped = nn.Linear(4, 4)
    start = params_of(unclipped)
    fit(unclipped, steep, [None], steps=1, optimizer=torch.optim.SGD(unclipped.parameters(), lr=1e-3),
        device=CPU, progress=False)
    assert torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(params_of(unclipped), start))) > 1e-2


# ---------------------------------------------------------------- EMA


def test_ema_of_constant_weights_is_those_weights():
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5))
    ema = EMA(model, 0.99)
    for _ in range(10):
        ema.update(model)
    for a, b in zip(ema.module.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


def test_ema_matches_the_hand_computed_average_and_copies_buffers():
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(0.0)
    ema = EMA(model, 0.9)
    for value in [1.0, 2.0, 4.0, -1.0]:
        with torch.no_grad():
            model[0].weight.fill_(value)
            model[1].running_mean.fill_(value)
        ema.update(model)
    # e_n = 0.9 e_{n-1} + 0.1 v_n from e_0 = 0:  0.1 (0.9^3 * 1 + 0.9^2 * 2 + 0.9 * 4 + (-1)) = 0.4949
    expected = 0.4949
    assert ema.module[0].weight.item() == pytest.approx(expected, abs=1e-6)
    assert ema.module[1].running_mean.item() == -1.0, "buffers are copied, not averaged"
    assert ema.module[1].num_batches_tracked.dtype == torch.int64

    target = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    ema.copy_to(target)
    assert target[0].weight.item() == pytest.approx(expected, abs=1e-6)

    restored = EMA(nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1)), 0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.decay == 0.9 and restored.num_updates == 4
    assert restored.module[0].weight.item() == pytest.approx(expected, abs=1e-6)


def test_ema_warmup_uses_the_smaller_decay_early_on():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, 0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(2 / 11)  # (1 + n) / (10 + n) for the first update, n = 1
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    assert ema.module.weight.item() == pytest.approx(9 / 11)  # 2/11 * 0 + 9/11 * 1: the start is forgotten fast
    ema.num_updates = 10_000
    assert ema.current_decay() == 0.999  # later the configured decay takes over
    plain = EMA(model, 0.999)
    assert plain.current_decay() == 0.999


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1, True, "0.9"])
def test_ema_rejects_a_decay_outside_0_1(decay):
    with pytest.raises(ValueError, match="between 0 and 1"):
        EMA(nn.Linear(1, 1), decay)


def test_fit_keeps_an_ema():
    x, y = regression_data()
    result = fit(nn.Linear(3, 1), mse, SeededLoader(x, y), steps=20, ema_decay=0.9, device=CPU, progress=False)
    assert isinstance(result.ema, EMA) and result.ema.num_updates == 20
    assert not torch.equal(result.ema.module.weight, result.model.weight)


# ---------------------------------------------------------------- NaN guard


def test_nan_loss_raises_and_leaves_the_model_as_before_the_bad_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    x, y = regression_data()
    calls = []

    def loss_fn(m, batch):
        calls.append(None)
        loss = mse(m, batch)
        return loss * float("nan") if len(calls) == 7 else loss

    states = {}
    with pytest.raises(NonFiniteLossError, match="step 7") as info:
        fit(model, loss_fn, SeededLoader(x, y), steps=20, lr=0.01, log_every=1, device=CPU, progress=False,
            callback=lambda s, m, h: states.__setitem__(s, copy.deepcopy(m.state_dict())))
    error = info.value
    assert error.step == 7 and math.isnan(error.value)
    message = str(error)
    for hint in ("learning rate", "clip_grad_norm", "range", "log(0)"):
        assert hint in message
    for key, value in model.state_dict().items():  # parameters AND BatchNorm statistics
        assert torch.equal(value, states[6][key]), f"{key} changed in the failed step"


def test_infinite_gradient_is_caught_when_clipping():
    model = nn.Linear(2, 1)

    def loss_fn(m, batch):
        return torch.sqrt((m.weight - m.weight.detach()).sum())  # value 0, gradient 1/(2 sqrt(0)) = inf

    before = params_of(model)
    with pytest.raises(NonFiniteLossError, match="gradient norm is inf at step 1"):
        fit(model, loss_fn, [None], steps=3, clip_grad_norm=1.0, device=CPU, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(params_of(model), before))


# ---------------------------------------------------------------- checkpoints and resume


def test_two_resumed_halves_equal_one_run(tmp_path):
    x, y = regression_data()
    kwargs = dict(lr=0.01, clip_grad_norm=1.0, ema_decay=0.9, log_every=10, device=CPU, progress=False)

    torch.manual_seed(0)
    whole = fit(small_mlp(), noisy_mse, SeededLoader(x, y), steps=100, **kwargs)

    path = tmp_path / "run.pt"
    torch.manual_seed(0)
    first = fit(small_mlp(), noisy_mse, SeededLoader(x, y), steps=50, checkpoint_path=path, **kwargs)
    assert first.history.steps == [10, 20, 30, 40, 50]
    torch.manual_seed(12345)  # a new session: other RNG state, other initial weights, a fresh loader
    second = fit(small_mlp(), noisy_mse, SeededLoader(x, y), steps=100, checkpoint_path=path, resume=True, **kwargs)

    assert second.steps == 100
    for a, b in zip(second.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(second.ema.module.parameters(), whole.ema.module.parameters()):
        assert torch.equal(a, b)
    assert second.ema.num_updates == 100
    assert second.history.as_dict() == whole.history.as_dict()


def test_interrupted_run_resumes_from_its_last_checkpoint(tmp_path):
    x, y = regression_data()
    kwargs = dict(lr=0.01, ema_decay=0.9, log_every=10, device=CPU, progress=False)
    torch.manual_seed(0)
    whole = fit(small_mlp(), noisy_mse, SeededLoader(x, y), steps=60, **kwargs)

    class Stop(Exception):
        pass

    def interrupt(step, model, history):
        if step == 40:
            raise Stop

    path = tmp_path / "run.pt"
    torch.manual_seed(0)
    with pytest.raises(Stop):  # checkpoint at step 25 holds half a logging window (steps 21..25)
        fit(small_mlp(), noisy_mse, SeededLoader(x, y), steps=60, checkpoint_path=path, checkpoint_every=25,
            callback=interrupt, **kwargs)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 25 and state["history"]["steps"] == [10, 20]
    resumed = fit(small_mlp(), noisy_mse, SeededLoader(x, y), steps=60, checkpoint_path=path, resume=True, **kwargs)
    for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)
    assert resumed.history.as_dict() == whole.history.as_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"], "no temporary files are left behind"


def test_checkpoint_contents_and_resume_of_a_finished_run(tmp_path):
    x, y = regression_data()
    path = tmp_path / "sub" / "ckpt.pt"
    result = fit(nn.Linear(3, 1), mse, SeededLoader(x, y), steps=12, checkpoint_path=path, device=CPU, progress=False)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 12 and state["ema"] is None and state["scaler"] is None
    assert state["history"] == result.history.as_dict()
    assert all(isinstance(v, float) for v in state["history"]["values"]["loss"])

    again = fit(nn.Linear(3, 1), mse, SeededLoader(x, y), steps=12, checkpoint_path=path, resume=True,
                device=CPU, progress=False)
    assert torch.equal(again.model.weight, result.model.weight) and again.history.steps == result.history.steps
    with pytest.raises(ValueError, match="beyond steps=5"):
        fit(nn.Linear(3, 1), mse, SeededLoader(x, y), steps=5, checkpoint_path=path, resume=True, device=CPU,
            progress=False)
    with pytest.raises(ValueError, match="does not fit this model"):
        fit(nn.Linear(3, 2), mse, SeededLoader(x, y), steps=20, checkpoint_path=path, resume=True, device=CPU,
            progress=False)


def test_resume_refuses_a_checkpoint_holding_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": Exception("not a tensor")}, path)
    with pytest.raises(RuntimeError, match="weights_only=True"):
        fit(nn.Linear(3, 1), mse, [regression_data()], steps=2, checkpoint_path=path, resume=True, device=CPU,
            progress=False)


# ---------------------------------------------------------------- misuse gets clear errors


def test_amp_on_the_cpu_changes_nothing():
    x, y = regression_data()
    results = []
    for amp in (False, True):
        torch.manual_seed(0)
        results.append(fit(nn.Linear(3, 1), mse, SeededLoader(x, y), steps=10, amp=amp, device=CPU, progress=False))
    assert torch.equal(results[0].model.weight, results[1].model.weight)


def test_bad_loaders_are_explained():
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="yielded no batches"):
        fit(model, mse, [], steps=3, device=CPU, progress=False)
    with pytest.raises(TypeError, match="InMemoryLoader"):
        fit(model, mse, torch.randn(10, 3), steps=3, device=CPU, progress=False)
    one_shot = (regression_data() for _ in range(2))
    with pytest.raises(ValueError, match="one-shot iterator.*after 2 batches"):
        fit(model, mse, one_shot, steps=3, device=CPU, progress=False)


def test_bad_losses_are_explained():
    model = nn.Linear(3, 1)
    data = [regression_data()]
    with pytest.raises(ValueError, match=r"scalar.*\.mean\(\)"):
        fit(model, lambda m, b: (m(b[0]) - b[1]) ** 2, data, steps=1, device=CPU, progress=False)
    with pytest.raises(TypeError, match=r"\.item\(\)"):
        fit(model, lambda m, b: mse(m, b).item(), data, steps=1, device=CPU, progress=False)
    with pytest.raises(ValueError, match="does not depend"):
        fit(model, lambda m, b: mse(m, b).detach(), data, steps=1, device=CPU, progress=False)
    with pytest.raises(ValueError, match="reserved"):
        fit(model, lambda m, b: (mse(m, b), {"loss": 1.0}), data, steps=1, device=CPU, progress=False)


def test_bad_arguments_are_explained():
    model = nn.Linear(3, 1)
    data = [regression_data()]
    with pytest.raises(ValueError, match="set them on it"):
        fit(model, mse, data, steps=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), lr=0.1, device=CPU)
    with pytest.raises(ValueError, match="another model"):
        fit(model, mse, data, steps=1, optimizer=torch.optim.SGD(nn.Linear(3, 1).parameters(), lr=0.1), device=CPU)
    with pytest.raises(ValueError, match="needs checkpoint_path"):
        fit(model, mse, data, steps=1, resume=True, device=CPU)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        fit(model, mse, data, steps=0, device=CPU)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fit(model, mse, data, steps=1, ema_decay=1.0, device=CPU)
    frozen = nn.Linear(3, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters that require grad"):
        fit(frozen, mse, data, steps=1, device=CPU)


# ---------------------------------------------------------------- History


def test_history_round_trip_smoothing_and_errors():
    h = History()
    for step, value in zip([1, 2, 3, 4], [4.0, 2.0, 0.0, 2.0]):
        h.log(step, {"loss": value})
    assert h.smoothed("loss", 2) == [4.0, 3.0, 1.0, 1.0]
    assert h.smoothed("loss", 1) == h.values["loss"]
    assert h.last("loss") == 2.0
    assert History.from_dict(h.as_dict()).as_dict() == h.as_dict()
    with pytest.raises(KeyError, match="'loss'"):
        h.last("kl")
    with pytest.raises(ValueError, match="not after"):
        h.log(4, {"loss": 1.0})
    with pytest.raises(ValueError, match="window"):
        h.smoothed("loss", 0)
