"""Progress bars: on a terminal, relayed to the chapter runner, or not at all."""

import pytest

from lib._progress import PROGRESS_ENV, latest, progress_bar


def test_a_bar_inside_a_chapter_run_is_relayed_to_the_runners_file(tmp_path, monkeypatch,
                                                                    capsys):
    relay = tmp_path / "progress.txt"
    monkeypatch.setenv(PROGRESS_ENV, str(relay))
    assert list(progress_bar(range(3), desc="cells")) == [0, 1, 2]
    state = latest(relay)
    assert state.startswith("cells: 3/3 [")
    assert capsys.readouterr().err == ""          # nothing on stderr, which is the page


def test_a_hidden_bar_writes_nowhere(tmp_path, monkeypatch, capsys):
    relay = tmp_path / "progress.txt"
    monkeypatch.setenv(PROGRESS_ENV, str(relay))
    list(progress_bar(range(3), desc="cells", show=False))
    assert not relay.exists() and latest(relay) == ""
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("show, shown", [(None, False), (True, True), (False, False)])
def test_outside_a_run_a_bar_goes_to_stderr_when_asked_or_when_it_is_a_terminal(
        monkeypatch, capsys, show, shown):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    list(progress_bar(range(2), desc="cells", show=show))
    assert ("cells" in capsys.readouterr().err) == shown      # pytest's stderr is no terminal


def test_latest_is_the_last_state_written(tmp_path):
    relay = tmp_path / "progress.txt"
    relay.write_text("\rtrain: 10%| 1/10\rtrain: 20%| 2/10\n\rcells: 1/3 \r")
    assert latest(relay) == "cells: 1/3"
