"""Exercises and grading: one source per exercise set, nbgrader-compatible notebooks.

``solutions/NN_topic.py`` (a jupytext percent script with nbgrader schema-3 cell metadata and
``### BEGIN SOLUTION`` / ``### END SOLUTION`` / ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``
markers) is the only file an author edits. From it:

- :mod:`course_lib.grading.exercises` validates the metadata and markers, builds the student
  notebook ``exercises/NN_topic.ipynb`` (stubs in place of solutions, hidden tests removed, no
  outputs, nbgrader checksums) and the full solution notebook the test suite executes, checks that
  ``exercises/`` is up to date, and lists the graded cells with their points and hints.
  From a terminal: ``course exercises`` (regenerate) and ``course exercises --check`` (CI).
- ``course grade`` (the grading command: each submission in its own sandboxed process, partial
  credit, CSV gradebook, feedback, tampered test cells restored from the source) builds on
  :func:`~course_lib.grading.exercises.solution_notebook` and
  :func:`~course_lib.grading.exercises.grade_inventory`.

The format is described under "Exercise format" in docs/ARCHITECTURE.md. Submodules are imported
on demand: ``from course_lib.grading import exercises``.
"""
