"""The instructor's workshop beside the learner's library: the ``course`` command and the grader.

``course_lib`` holds only what notebooks import. Everything that runs *around* the notebooks
lives here, in the same distribution (one ``pip install -e .`` installs both):

- :mod:`course_tools.cli`: the ``course`` command (``doctor``, ``run``, ``exercises``, ``grade``);
- :mod:`course_tools.repo`: finding the repository root, and notebooks and exercise sets by
  number or name;
- :mod:`course_tools.execute`: running a notebook headless (``course run`` and the tests);
- :mod:`course_tools.doctor`: the checks of ``course doctor``;
- :mod:`course_tools.grading`: exercises built from ``solutions/`` and ``course grade``.

Nothing in ``course_lib`` imports from here.
"""
