"""Progress of long loops: a tqdm bar on a terminal, plain lines when stderr is not one."""

import sys
import time
from collections.abc import Mapping

import tqdm


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
        """Advances by one step; with `values`, shows them on the bar or prints one line."""
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
