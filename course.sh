#!/usr/bin/env bash
# The course's two commands (see README "Quick start"):
#   ./course.sh lab    set up (first time) and open the course in JupyterLab on notebook 00
#   ./course.sh test   set up if needed and run every test, every notebook executed in quick mode
# Set-up makes its own virtual environment in .venv with the tested versions pinned in
# requirements/lock.txt (torch 2.13.0, CPU or CUDA build as pip finds it) and re-runs only when
# pyproject.toml or the lock file change. Needs Python 3.11+ and nothing else.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${COURSE_VENV:-.venv}"
# Idle OpenMP threads spinning while they wait make small-tensor PyTorch code 50-100x slower when
# cores are shared (a lab server, pytest beside a notebook kernel); passive waiting costs nothing.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
EXTRAS="${COURSE_EXTRAS:-dev,instructor}"

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "course.sh: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

setup() {
    local stamp="$VENV/.course-setup-stamp"
    local want
    want="$(cat pyproject.toml requirements/lock.txt | cksum | cut -d' ' -f1)-$EXTRAS"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    local python
    python="$(find_python)"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "course.sh: making a virtual environment in $VENV with $python"
        "$python" -m venv "$VENV"
    fi
    echo "course.sh: installing the pinned, tested versions (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --quiet -c requirements/lock.txt -e ".[$EXTRAS]"
    echo "$want" > "$stamp"
    "$VENV/bin/course" doctor --short || true
}

command="${1:-help}"
shift || true
case "$command" in
    lab)
        setup
        exec "$VENV/bin/jupyter" lab notebooks/00_setup_and_tour.ipynb "$@"
        ;;
    test)
        setup
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    setup)
        setup
        ;;
    *)
        sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
        [ "$command" = help ] || exit 2
        ;;
esac
