"""A Ctrl-C that Python swallowed (in a gc callback or a __del__) is raised again."""

import gc
import sys
import types

import pytest

from jaxmani import cli, interrupts, progress


def unraisable(exc_type):
    """What Python hands sys.unraisablehook."""
    return types.SimpleNamespace(
        exc_type=exc_type, exc_value=exc_type(), exc_traceback=None, err_msg=None, object=None
    )


@pytest.fixture
def hook(monkeypatch):
    """interrupts.remember as the unraisable hook, Python's own hook recorded, nothing pending."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", interrupts.remember)
    monkeypatch.setattr(sys, "__unraisablehook__", seen.append)
    interrupts._swallowed.clear()
    yield seen
    interrupts._swallowed.clear()


def test_a_ctrl_c_raised_in_a_gc_callback_is_raised_again_by_check(hook):
    pending = [KeyboardInterrupt()]

    def callback(phase, info):
        if phase == "start" and pending:
            raise pending.pop()

    gc.callbacks.append(callback)
    try:
        gc.collect()  # Python swallows the KeyboardInterrupt here.
    finally:
        gc.callbacks.remove(callback)
    assert not pending
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()
    interrupts.check()  # Raised once only.
    assert hook == []


def test_a_ctrl_c_raised_in_del_is_remembered(hook):
    class Finalized:
        def __del__(self):
            raise KeyboardInterrupt

    Finalized()
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()


def test_other_unraisable_exceptions_go_to_pythons_hook(hook):
    interrupts.remember(unraisable(ValueError))
    interrupts.check()
    assert [u.exc_type for u in hook] == [ValueError]


def test_progress_raises_a_swallowed_ctrl_c(hook):
    bar = progress.Progress(0, 3, "test")
    bar.update(1)
    interrupts.remember(unraisable(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        bar.update(2)
    bar.close()


def test_a_command_that_ends_with_one_pending_exits_130(hook, capsys):
    interrupts.remember(unraisable(KeyboardInterrupt))
    with pytest.raises(SystemExit) as exit_:
        cli.run(["--help"])
    assert exit_.value.code == cli.INTERRUPTED_STATUS
    assert capsys.readouterr().err == "jaxmani: interrupted\n"
