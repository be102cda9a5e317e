"""Story: every failure of an engine scenario names the engine, the server
shape and the step, and says what differed."""

from __future__ import annotations

import contextlib

import pytest


class Story:
    """Names the engine, shape and current step in every failure."""

    def __init__(self, engine: str, shape: str):
        self.engine = engine
        self.shape = shape
        self.step_name = "setup"

    def where(self) -> str:
        return f"{self.engine}/{self.shape} step '{self.step_name}'"

    @contextlib.contextmanager
    def step(self, name: str):
        self.step_name = name
        try:
            yield
        except AssertionError:
            raise
        except pytest.fail.Exception as e:  # pytest.raises(...) that did not raise
            raise AssertionError(f"{self.where()}: {e}") from e
        except Exception as e:
            raise AssertionError(f"{self.where()}: raised {type(e).__name__}: {_first_lines(e)}") from e

    def check(self, ok, what: str) -> None:
        assert ok, f"{self.where()}: {what}"

    def equal(self, got, want, what: str) -> None:
        assert got == want, f"{self.where()}: {what}: got {got!r}, want {want!r}"

    def sets_equal(self, got, want, what: str, show: int = 5) -> None:
        got, want = set(got), set(want)
        if got == want:
            return
        extra, missing = sorted(got - want), sorted(want - got)
        raise AssertionError(
            f"{self.where()}: {what}: {len(got)} got, {len(want)} wanted; "
            f"{len(extra)} unexpected (first {extra[:show]}), {len(missing)} missing (first {missing[:show]})"
        )

    def rows_equal(self, got: list, want: list, what: str) -> None:
        """got and want are lists of rows (dicts or tuples) in the same order."""
        if got == want:
            return
        lines = [f"{self.where()}: {what}: {len(got)} rows, want {len(want)}"]
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                lines.append(f"  first difference at sorted row {i}: got {g!r}, want {w!r}")
                break
        else:
            extra = got[len(want) :] or want[len(got) :]
            lines.append(f"  rows only on one side, first: {extra[0]!r}")
        raise AssertionError("\n".join(lines))


def _first_lines(e: Exception, limit: int = 4000) -> str:
    """An engine exception's message without the JVM stack trace that py4j
    appends (the trace is in the chained exception pytest prints)."""
    msg = str(e)
    lines = [ln for ln in msg.splitlines() if not ln.lstrip().startswith("at ")]
    msg = "\n".join(lines)
    return msg if len(msg) <= limit else msg[:limit] + " ... (cut)"
