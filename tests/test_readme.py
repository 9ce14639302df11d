"""The README's 30-second tour is runnable code: run it, so it stays true."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_tour_passes(ws_pytester: pytest.Pytester) -> None:
    tour = re.search(r"## The 30-second tour\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert tour is not None, "README.md lost its tour"
    ws_pytester.makepyfile(test_tour=tour.group(1))
    result = ws_pytester.runpytest("-p", "ws_resilience", "--strict-markers")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 3 and "failed" not in outcomes
