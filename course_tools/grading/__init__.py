"""Exercises and grading: one source per exercise set, nbgrader-compatible notebooks.

``solutions/NN_topic.py`` (a jupytext percent script with nbgrader schema-3 cell metadata and
``### BEGIN SOLUTION`` / ``### END SOLUTION`` / ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``
markers) is the only file an author edits. The rooms, in the order a grading run uses them:

- :mod:`~course_tools.grading.exercises`: validates the metadata and markers, builds the student
  notebook ``exercises/NN_topic.ipynb`` (stubs for solutions, hidden tests removed, no outputs,
  nbgrader checksums) and the solution notebook the tests execute, checks that ``exercises/`` is up
  to date, lists the graded cells with their points and hints (``course exercises [--check]``);
- :mod:`~course_tools.grading.assignment`: an exercise set as the grader reads it;
- :mod:`~course_tools.grading.submissions`: finding the class's notebooks and reading each safely;
- :mod:`~course_tools.grading.plan`: which cells run in which order (tampered cells restored);
- :mod:`~course_tools.grading.review`: a static look at student code, for the instructor;
- :mod:`~course_tools.grading.sandbox` (with the sandboxed process ``_runner.py``): where the
  notebook runs, sealed;
- :mod:`~course_tools.grading.scoring`: from the sandbox's record of a test cell to its points;
- :mod:`~course_tools.grading.results` and :mod:`~course_tools.grading.reports`: what a run
  produces and the files it writes;
- :mod:`~course_tools.grading.grade`: ``course grade``, all of the above for a whole class.

The format is described under "Exercise format" in docs/ARCHITECTURE.md, the grader's threat model
in docs/grading.md. Submodules are imported on demand: ``from course_tools.grading import exercises``.
"""
