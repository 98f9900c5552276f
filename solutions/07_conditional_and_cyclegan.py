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
# # Exercises 07 · Conditional and unpaired GANs
#
# Three questions on the computations behind notebook 07 (7 points in total): the projection discriminator's
# logit, CycleGAN's cycle-consistency and identity losses, and the label agreement of a conditional generator.
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
# not edit them (the grader restores them anyway). Run the notebook from the top before you hand it in.
#
# Write the computations yourself with `torch`; do not call `course_lib.models.gan` or
# `course_lib.models.cyclegan` in your answers (the tests compare with them).

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import torch
from torch import nn

from course_lib import config

generator = config.seed_everything(0)
print(f"mode: {config.mode()}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · The projection discriminator (2 points)
#
# A projection discriminator scores an image $x$ with label $y$ by
# $\ell(x, y) = \psi(\phi(x)) + e_y^\top \phi(x)$, where $\phi(x) \in \mathbb R^F$ are image features,
# $\psi$ is a linear layer to one number and $e_y \in \mathbb R^F$ is a learned vector per class.
#
# Complete `projection_logit(phi, labels, psi, embed)`: `phi` is `(B, F)`, `labels` is `(B,)` int64,
# `psi` is an `nn.Linear(F, 1)`, `embed` an `nn.Embedding(K, F)`. Return the logits `(B,)`.

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def projection_logit(phi: torch.Tensor, labels: torch.Tensor, psi: nn.Linear, embed: nn.Embedding) -> torch.Tensor:
    """psi(phi) + <e_y, phi>: (B, F), (B,) -> (B,)."""
    ### BEGIN SOLUTION
    return psi(phi).squeeze(1) + (embed(labels) * phi).sum(dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: embed(labels) has shape (B, F); the projection is a row-wise dot product with phi.
_psi, _emb = nn.Linear(4, 1), nn.Embedding(3, 4)
with torch.no_grad():
    _psi.weight.zero_(); _psi.bias.fill_(0.5); _emb.weight.copy_(torch.eye(3, 4))  # noqa: E702
_phi = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
_out = projection_logit(_phi, torch.tensor([0, 2]), _psi, _emb)
assert _out.shape == (2,), "one logit per example"
assert torch.allclose(_out, torch.tensor([1.5, 3.5])), "0.5 + phi[y] for one-hot class vectors"
### BEGIN HIDDEN TESTS
torch.manual_seed(3)
_psi, _emb = nn.Linear(6, 1), nn.Embedding(10, 6)
_phi, _y = torch.randn(7, 6), torch.randint(0, 10, (7,))
assert torch.allclose(projection_logit(_phi, _y, _psi, _emb),
                      _psi(_phi)[:, 0] + torch.stack([_emb.weight[k] @ _phi[i] for i, k in enumerate(_y)]), atol=1e-6)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · Cycle-consistency and identity losses (3 points)
#
# With generators `G` ($A \to B$) and `F` ($B \to A$), both maps from images `(N, C, H, W)` to images of the same
# shape, complete
#
# * `cycle_loss(G, F, a, b)` $= \operatorname{mean}\lvert F(G(a)) - a\rvert + \operatorname{mean}\lvert G(F(b)) - b\rvert$;
# * `identity_loss(G, F, a, b)` $= \operatorname{mean}\lvert G(b) - b\rvert + \operatorname{mean}\lvert F(a) - a\rvert$,
#
# where each mean is over all pixels of the batch (the batches of A and B may have different sizes).
# Return 0-dim tensors.

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cycle_loss(G, F, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean |F(G(a)) - a| + mean |G(F(b)) - b|."""
    ### BEGIN SOLUTION
    return (F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean()
    ### END SOLUTION


def identity_loss(G, F, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean |G(b) - b| + mean |F(a) - a|."""
    ### BEGIN SOLUTION
    return (G(b) - b).abs().mean() + (F(a) - a).abs().mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Hint: for G = F = identity both losses are 0; for G(x) = x + s and F(x) = x + s the cycle loss is 4|s|.
_a, _b = torch.rand(3, 1, 28, 28), torch.rand(5, 1, 28, 28)
_id = lambda x: x  # noqa: E731
assert cycle_loss(_id, _id, _a, _b).item() == 0.0 and identity_loss(_id, _id, _a, _b).item() == 0.0
_shift = lambda x: x + 0.25  # noqa: E731
assert abs(cycle_loss(_shift, _shift, _a, _b).item() - 1.0) < 1e-6, "two shifts by 0.25: 0.5 + 0.5"
assert abs(identity_loss(_shift, _shift, _a, _b).item() - 0.5) < 1e-6
### BEGIN HIDDEN TESTS
from course_lib.models import cyclegan as _cg

torch.manual_seed(0)
_G, _F = _cg.ResnetGenerator(width=4, blocks=1), _cg.ResnetGenerator(width=4, blocks=1)
_model = _cg.CycleGAN(_G, _F, nn.Identity(), nn.Identity())
_a, _b = torch.rand(2, 1, 28, 28) * 2 - 1, torch.rand(3, 1, 28, 28) * 2 - 1
assert torch.allclose(cycle_loss(_G, _F, _a, _b), _model.cycle_loss(_a, _b), atol=1e-6)
assert torch.allclose(identity_loss(_G, _F, _a, _b), _model.identity_loss(_a, _b), atol=1e-6)
_half = lambda x: x / 2  # noqa: E731
assert abs(cycle_loss(_half, _id, _a, _b).item() - ((_a / 2 - _a).abs().mean() + (_b / 2 - _b).abs().mean()).item()) < 1e-6
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · Label agreement and the confusion matrix (2 points)
#
# A conditional generator was asked for digits `requested` `(N,)`; a classifier read the generated images as
# `read` `(N,)` (both int64 in `0..K-1`). Complete `label_agreement(requested, read, K)` returning
# `(agreement, confusion)`: `agreement` is the share of samples read as requested (a Python float), `confusion`
# is a `(K, K)` float tensor whose row `i` holds the fraction of the requests for class `i` that were read as
# each class (each row with at least one request sums to 1; rows without requests are 0).

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def label_agreement(requested: torch.Tensor, read: torch.Tensor, K: int) -> tuple[float, torch.Tensor]:
    """Share read as requested, and the row-normalised confusion matrix (K, K)."""
    ### BEGIN SOLUTION
    counts = torch.zeros(K, K)
    counts.index_put_((requested, read), torch.ones(len(requested)), accumulate=True)
    rows = counts.sum(1, keepdim=True)
    confusion = torch.where(rows > 0, counts / rows.clamp_min(1), torch.zeros_like(counts))
    return float((requested == read).float().mean()), confusion
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: index_put_ with accumulate=True (or a loop) counts (requested, read) pairs.
_agree, _conf = label_agreement(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 3)
assert abs(_agree - 0.75) < 1e-9 and isinstance(_agree, float)
assert torch.allclose(_conf, torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
### BEGIN HIDDEN TESTS
torch.manual_seed(0)
_r, _s = torch.randint(0, 10, (500,)), torch.randint(0, 10, (500,))
_agree, _conf = label_agreement(_r, _s, 10)
assert abs(_agree - (_r == _s).float().mean().item()) < 1e-9
assert torch.allclose(_conf.sum(1), torch.ones(10))
assert abs(_conf[3, 5].item() - ((_r == 3) & (_s == 5)).sum().item() / (_r == 3).sum().item()) < 1e-6
### END HIDDEN TESTS
