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
# # Exercises 05 · VQ-VAE
#
# Five questions that rebuild the vector quantiser of notebook 05 and prepare its codes for a prior
# (10 points in total): nearest-code quantisation, the straight-through estimator, the codebook and
# commitment losses with the right stop-gradients, the perplexity of a codebook, and code grids as
# token sequences for a Transformer.
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
# not edit them. Run the notebook from the top (*Run → Run All Cells*) before you hand it in.
#
# Write your answers with plain `torch` operations. `course_lib.models.vqvae` contains reference
# versions (the tests use them as a check): do not call it in your answers.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import torch

from course_lib import config
from course_lib.models import vqvae as Q

generator = config.seed_everything(0)
print(f"mode: {config.mode()}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · Nearest-code quantisation (2 points)
#
# Implement `quantize(z, codebook)`. `z: (N, D)` are encoder outputs, `codebook: (K, D)` the codes. Return
# `(indices, z_q)`: `indices: (N,)` int64 with the index of the nearest code of each row in Euclidean
# distance, and `z_q: (N, D)` the chosen codes. Use
# $\lVert z - e_k \rVert^2 = \lVert z \rVert^2 - 2 z^\top e_k + \lVert e_k \rVert^2$ to get all `N x K` distances
# with one matrix product (no Python loop over rows).

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest codebook entry of each row of z: (N, D), (K, D) -> (indices (N,) int64, z_q (N, D))."""
    ### BEGIN SOLUTION
    d2 = (z**2).sum(1, keepdim=True) - 2 * z @ codebook.T + (codebook**2).sum(1)[None, :]
    indices = d2.argmin(dim=1)
    return indices, codebook[indices]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: the distances form an (N, K) matrix; argmin over dim=1. codebook[indices] picks the rows.
codebook = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
z = torch.tensor([[0.1, 0.1], [0.9, -0.2], [0.2, 1.5], [0.6, 0.0]])
indices, z_q = quantize(z, codebook)
assert indices.dtype == torch.long and indices.shape == (4,), f"indices should be (4,) int64, got {indices.shape} {indices.dtype}"
assert indices.tolist() == [0, 1, 2, 1], f"nearest codes should be [0, 1, 2, 1], got {indices.tolist()}"
assert torch.equal(z_q, codebook[[0, 1, 2, 1]]), "z_q should be the chosen codebook rows"
print("Q1 passes the visible checks")
### BEGIN HIDDEN TESTS
big_z = torch.randn(500, 8, generator=generator)
big_cb = torch.randn(32, 8, generator=generator)
idx, zq = quantize(big_z, big_cb)
brute = ((big_z[:, None, :] - big_cb[None, :, :]) ** 2).sum(-1).argmin(1)
assert torch.equal(idx, brute)
assert torch.equal(zq, big_cb[brute])
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · The straight-through estimator (2 points)
#
# Implement `straight_through(z_e, z_q)`: it must return a tensor whose **value** is `z_q` and whose
# **gradient** with respect to `z_e` is the identity, $\tilde z = z_e + \operatorname{sg}[z_q - z_e]$, where
# $\operatorname{sg}$ is `.detach()`. No gradient may flow into `z_q` through it.

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value of z_q, gradient of z_e (same shape as both)."""
    ### BEGIN SOLUTION
    return z_e + (z_q - z_e).detach()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: one line; think about which part of the expression the gradient must skip.
z_e = torch.randn(5, 3, generator=generator, requires_grad=True)
z_q = torch.randn(5, 3, generator=generator, requires_grad=True)
out = straight_through(z_e, z_q)
assert torch.allclose(out, z_q), "the value must be z_q"
w = torch.randn(5, 3, generator=generator)
(out * w).sum().backward()
assert z_e.grad is not None and torch.allclose(z_e.grad, w), "the gradient must reach z_e unchanged"
print("Q2 passes the visible checks")
### BEGIN HIDDEN TESTS
assert z_q.grad is None or torch.all(z_q.grad == 0), "no gradient may flow into z_q"
a = torch.randn(2, 4, 3, 3, requires_grad=True)
b = torch.randn(2, 4, 3, 3)
torch.testing.assert_close(straight_through(a, b), Q.straight_through(a, b))
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · The codebook and commitment losses (2 points)
#
# Given encoder outputs `z_e: (N, D)` and their chosen codes `e: (N, D)` (still attached to the codebook's
# graph), implement `vq_losses(z_e, e)` returning `(codebook_loss, commitment_loss)`, both mean squared
# errors over all elements (like `F.mse_loss`):
#
# $$\text{codebook} = \operatorname{mean}\big(\operatorname{sg}[z_e] - e\big)^2, \qquad
#   \text{commitment} = \operatorname{mean}\big(z_e - \operatorname{sg}[e]\big)^2 .$$
#
# The codebook loss must train only the codes, the commitment loss only the encoder.

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def vq_losses(z_e: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook_loss, commitment_loss), each a 0-dim tensor, with the stop-gradients of the VQ-VAE paper."""
    ### BEGIN SOLUTION
    codebook_loss = ((z_e.detach() - e) ** 2).mean()
    commitment_loss = ((z_e - e.detach()) ** 2).mean()
    return codebook_loss, commitment_loss
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: both losses have the same value; they differ only in where .detach() goes.
z_e = torch.randn(6, 2, generator=generator, requires_grad=True)
cb = torch.randn(4, 2, generator=generator, requires_grad=True)
e = cb[quantize(z_e.detach(), cb.detach())[0]]
codebook_loss, commitment_loss = vq_losses(z_e, e)
assert codebook_loss.dim() == 0 and commitment_loss.dim() == 0, "return two 0-dim tensors (means)"
assert torch.allclose(codebook_loss, ((z_e - e) ** 2).mean()), "wrong value of the codebook loss"
grad_z, = torch.autograd.grad(commitment_loss, z_e, retain_graph=True)
assert torch.allclose(grad_z, 2 * (z_e - e).detach() / z_e.numel()), "commitment: d/dz_e = 2 (z_e - e) / n"
assert cb.grad is None
print("Q3 passes the visible checks")
### BEGIN HIDDEN TESTS
gz = torch.autograd.grad(codebook_loss, z_e, retain_graph=True, allow_unused=True)[0]
assert gz is None or torch.all(gz == 0), "the codebook loss must not train the encoder"
gcb = torch.autograd.grad(commitment_loss, cb, retain_graph=True, allow_unused=True)[0]
assert gcb is None or torch.all(gcb == 0), "the commitment loss must not train the codebook"
gcb2 = torch.autograd.grad(codebook_loss, cb)[0]
assert gcb2.abs().sum() > 0, "the codebook loss must train the codebook"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q4_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q4 · Codebook perplexity (2 points)
#
# The perplexity of a codebook's usage is $\exp\big(-\sum_k p_k \log p_k\big)$, where $p_k$ is the share of
# positions assigned to code $k$ (with $0 \log 0 = 0$). It is 1 when a single code is used and $K$ when all
# $K$ codes are used equally. Implement `codebook_perplexity(indices, num_codes)` for a tensor of code
# indices of any shape; return a Python `float`. (`torch.bincount(..., minlength=num_codes)` counts.)

# %% nbgrader={"grade": false, "grade_id": "q4_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def codebook_perplexity(indices: torch.Tensor, num_codes: int) -> float:
    """exp(entropy) of the histogram of code indices (any shape, int64)."""
    ### BEGIN SOLUTION
    counts = torch.bincount(indices.flatten(), minlength=num_codes).double()
    p = counts / counts.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q4_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: drop the zero shares before taking logs (0 log 0 = 0, but 0 * log(0) is nan in floating point).
assert abs(codebook_perplexity(torch.zeros(3, 7, 7, dtype=torch.long), 64) - 1.0) < 1e-9, "one code used: perplexity 1"
assert abs(codebook_perplexity(torch.arange(16).repeat(4), 16) - 16.0) < 1e-9, "16 codes used equally: perplexity 16"
p = codebook_perplexity(torch.tensor([0, 0, 0, 1]), 8)
assert isinstance(p, float) and math.isfinite(p), "return a finite Python float (mind the unused codes)"
print("Q4 passes the visible checks")
### BEGIN HIDDEN TESTS
for _ in range(3):
    idx = torch.randint(0, 20, (5, 7, 7), generator=generator)
    assert abs(codebook_perplexity(idx, 32) - Q.perplexity(idx, 32)) < 1e-9
assert abs(p - math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))) < 1e-9
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q5_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q5 · Code grids as token sequences (2 points)
#
# A Transformer prior reads a `(B, h, w)` grid of codes in raster order (row by row). Its input starts with a
# start token `bos` (an id outside the codes) and is shifted by one against the targets:
#
# ```
# grid [[a, b], [c, d]]  ->  inputs [bos, a, b, c]   targets [a, b, c, d]
# ```
#
# Implement `to_sequences(grids, bos)` returning `(inputs, targets)`, each `(B, h * w)` int64.

# %% nbgrader={"grade": false, "grade_id": "q5_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def to_sequences(grids: torch.Tensor, bos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, h, w) code grids -> (inputs, targets), each (B, h*w) int64, inputs shifted right behind bos."""
    ### BEGIN SOLUTION
    targets = grids.reshape(grids.shape[0], -1).long()
    inputs = torch.cat([torch.full_like(targets[:, :1], bos), targets[:, :-1]], dim=1)
    return inputs, targets
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q5_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: reshape each grid to one row (raster order), then prepend bos and drop the last code for the inputs.
inputs, targets = to_sequences(torch.tensor([[[1, 2], [3, 4]]]), bos=9)
assert inputs.tolist() == [[9, 1, 2, 3]], f"inputs should be [[9, 1, 2, 3]], got {inputs.tolist()}"
assert targets.tolist() == [[1, 2, 3, 4]], f"targets should be [[1, 2, 3, 4]], got {targets.tolist()}"
print("Q5 passes the visible checks")
### BEGIN HIDDEN TESTS
grids = torch.randint(0, 64, (5, 7, 7), generator=generator)
prior = Q.CodePrior(64, (7, 7), n_layer=1, n_head=1, n_embd=8)
ref_x, ref_y = prior.sequences(grids)
x, y = to_sequences(grids, bos=64)
assert torch.equal(x, ref_x) and torch.equal(y, ref_y)
assert x.dtype == torch.long and x.shape == (5, 49)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Done
#
# With `quantize`, `straight_through` and `vq_losses` you have the whole vector-quantisation layer; with
# `codebook_perplexity` its health check; with `to_sequences` the bridge to the Transformer prior that turns
# a VQ-VAE into a generative model.
