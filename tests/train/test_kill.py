"""SIGKILL while orbax writes a checkpoint: the rerun resumes from the last complete one."""

import os
import signal
import time

from jaxmani.train import checkpoint, loop
from tests.conftest import train_config
from tests.train.test_distributed import start_python, train_args

TMP_SUFFIX = ".orbax-checkpoint-tmp"

# `jaxmani` whose orbax stalls the commit (the rename of the finished temporary directory) of
# step STALL_STEP forever, after touching STALL_MARKER: the test kills it inside that save.
STALLING_JAXMANI = """
import asyncio
import os
import sys

from orbax.checkpoint._src.path import atomicity

commit = atomicity.AtomicRenameTemporaryPath.finalize


async def stalled_commit(self):
    if self.get_final().name == os.environ["STALL_STEP"]:
        open(os.environ["STALL_MARKER"], "w").close()
        await asyncio.sleep(3600)
    await commit(self)


atomicity.AtomicRenameTemporaryPath.finalize = stalled_commit

from jaxmani import cli

cli.run(sys.argv[1:])
"""


def test_run_killed_during_a_save_resumes_to_the_uninterrupted_state(tmp_path, toy_data_dir):
    killed, straight, marker = tmp_path / "killed", str(tmp_path / "straight"), tmp_path / "mark"
    args = train_args(toy_data_dir, str(killed))
    env = os.environ | {"STALL_STEP": "4", "STALL_MARKER": str(marker)}
    process = start_python(["-c", STALLING_JAXMANI, *args], devices=1, env=env)
    deadline = time.monotonic() + 600
    while not marker.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    directory = checkpoint.checkpoint_dir(str(killed))
    left = sorted(os.listdir(directory))
    assert left[0] == "2" and len(left) == 2 and left[1].startswith(f"4{TMP_SUFFIX}")
    assert checkpoint.latest_fingerprint(str(killed))[0] == 2

    loop.train(train_config(toy_data_dir), str(killed))
    assert sorted(os.listdir(directory)) == ["2", "4"]
    loop.train(train_config(toy_data_dir), straight)
    assert checkpoint.latest_fingerprint(str(killed)) == checkpoint.latest_fingerprint(straight)
