"""Root pytest configuration.

- Every test, and every notebook nbval executes, runs in quick mode (COURSE_QUICK=1).
- Notebooks under notebooks/ are executed with nbval in lax mode (outputs are not compared, errors
  fail) in the current environment's kernel. This is switched on here rather than in addopts so that
  `pytest -p no:nbval tests/...` still works for quick unit-test runs.
"""

import os

os.environ["COURSE_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# Two cores are shared between the notebook kernel and pytest: keep BLAS/torch threads in check.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP threads that spin while waiting starve the other process when pytest and a notebook
# kernel share two cores: small-tensor code ran 50-100x slower. Passive waiting avoids it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_configure(config):
    if config.pluginmanager.hasplugin("nbval"):
        config.option.nbval_lax = True
        config.option.nbval_current_env = True
