"""Fixtures shared by the unit tests (the repository's conftest.py sets the environment for every run)."""

import pytest
import torch


@pytest.fixture(scope="module")
def single_torch_thread():
    """Run a test module with one torch thread, then restore the setting.

    Tests on small tensors are faster single-threaded: a second thread only adds synchronisation, which costs
    seconds per test on a busy shared machine. Use it with ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
