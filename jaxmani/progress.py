"""Progress of long work: a tqdm bar on a terminal, plain lines when stderr is not one, and
status lines for steps whose amount of work is unknown (compiling, building, initialising)."""

import contextlib
import sys
import threading
import time
from collections.abc import Iterator, Mapping

import tqdm

from jaxmani import interrupts

HEARTBEAT_SECONDS = 10.0  # Interval of the "still running" lines of a long `stage`.


def status(label: str, message: str) -> None:
    """Prints one plain `label: message` line on stderr."""
    print(f"{label}: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(label: str, message: str, heartbeat: bool = True) -> Iterator[None]:
    """Reports a step of unknown length: a line when it starts, one every HEARTBEAT_SECONDS while
    it runs (unless `heartbeat` is off, e.g. while a library draws its own bar) and its duration
    when it ends; a step that raises ends without the last line."""
    status(label, f"{message} ...")
    start = time.perf_counter()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            status(label, f"{message} ... {time.perf_counter() - start:.0f} s")

    if heartbeat:
        threading.Thread(target=beat, daemon=True).start()
    try:
        yield
    finally:
        done.set()
    status(label, f"{message}: done in {time.perf_counter() - start:.1f} s")


class Progress:
    """Counts steps from `start` to `total`; `update` with values also reports them."""

    def __init__(self, start: int, total: int, label: str):
        self.interactive = sys.stderr.isatty()
        self.bar = tqdm.tqdm(
            initial=start, total=total, unit="step", desc=label, disable=not self.interactive
        )
        self.start, self.total, self.label = start, total, label
        self.clock = time.perf_counter()

    def update(self, step: int, values: Mapping[str, float] | None = None) -> None:
        """Advances by one step (raising a swallowed Ctrl-C, `interrupts.check`); with `values`,
        shows them on the bar or prints one line."""
        interrupts.check()
        self.bar.update(1)
        if values is None:
            return
        text = " ".join(f"{name} {value:.4f}" for name, value in values.items())
        if self.interactive:
            self.bar.set_postfix_str(text)
            return
        rate = (step - self.start) / max(time.perf_counter() - self.clock, 1e-9)
        eta = (self.total - step) / max(rate, 1e-9)
        print(
            f"{self.label} step {step}/{self.total} {rate:.2f} steps/s eta {eta:.0f}s {text}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        """Closes the bar."""
        self.bar.close()
