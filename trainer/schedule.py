"""Which epochs get logged (MI, activations, gradients).

Epoch e is the network after e passes over the training data, so epoch 0 is
the initial network. Every schedule logs epoch 0 and the last epoch.

Schedules (config key `log_schedule`):

- "default", deep-bottleneck's schedule as its papers and our notes state it, and
  as its `do_report` is today (neuroinfo-os/deep-bottleneck,
  deep_bottleneck/experiment.py, bb88a13): every epoch below 50 (0..49), every
  2nd below 100 (50, 52, ..., 98), every 20th below 2000 (100, 120, ..., 1980),
  every 100th from 2000 on. 231 epochs of 8000.
- "deep_bottleneck", its `do_report` before add4d85 (2019-03-15), which had one
  more tier, since commented out: every 5th epoch from 100 to 495, then every
  20th from 500. 291 epochs of 8000.
- "ibsgd", Saxe et al. 2018 (artemyk/ibsgd, IBnet_SaveActivations.ipynb):
  every epoch below 20, every 5th below 100 (20, 25, ..., 95), every 20th
  below 2000, every 100th from 2000 on. 192 epochs of 8000.
- {"log_spaced": N}: about N log-spaced epochs, as in IDNNs (Shwartz-Ziv &
  Tishby 2017, ravidziv/IDNNs idnns/networks/information_network.py, which
  takes unique(logspace(log2 1, log2 E, N, base=2, dtype=int)) - 1). Here:
  unique(rint(geomspace(1, E + 1, N))) - 1, so it starts at 0 and ends at E;
  duplicates among the first epochs merge, so there are at most N.
- {"every": K}: epochs 0, K, 2K, ... and the last.

Both reference codes apply their rule to Keras' 0-based epoch index in
`on_epoch_end`, i.e. to the network after e + 1 passes, and never log the
initial network; we apply the same rule to our epoch numbers (after e passes)
and add epoch 0 and the last epoch.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

# (below, step): epochs e < below are logged when e % step == 0; the first matching tier applies.
TIERED_SCHEDULES = {
    "default": ((50, 1), (100, 2), (2000, 20), (math.inf, 100)),
    "deep_bottleneck": ((50, 1), (100, 2), (500, 5), (2000, 20), (math.inf, 100)),
    "ibsgd": ((20, 1), (100, 5), (2000, 20), (math.inf, 100)),
}
# The most epochs a config may ask for. The tiered schedules are decided epoch by epoch and the
# metrics table holds a row per epoch, so 10**11 epochs stalled `trainer run` before its first
# epoch (and 10**21 failed writing run.json); the published runs are 8000-10000 epochs.
MAX_EPOCHS = 1_000_000
# Parametrised schedules and their allowed parameters (smallest, largest). log_spaced asks for
# that many points of np.geomspace: more than MAX_EPOCHS + 1 (every epoch) only costs memory.
PARAMETRISED_SCHEDULES = {"log_spaced": (2, MAX_EPOCHS + 1), "every": (1, MAX_EPOCHS)}


class ScheduleError(ValueError):
    """A logging schedule the trainer refuses; the message names the value and what is allowed."""


def _allowed() -> str:
    names = " or ".join(repr(name) for name in TIERED_SCHEDULES)
    (log_low, log_high), (every_low, every_high) = PARAMETRISED_SCHEDULES["log_spaced"], PARAMETRISED_SCHEDULES["every"]
    return (f'{names}, {{"log_spaced": N}} with {log_low} <= N <= {log_high}, '
            f'or {{"every": K}} with {every_low} <= K <= {every_high}')


def validate_schedule(value: Any) -> str | dict[str, int]:
    """Return the schedule in canonical form (a name, or a one-key dict with an int) or raise ScheduleError."""
    if isinstance(value, str):
        if value in TIERED_SCHEDULES:
            return value
        raise ScheduleError(f"log_schedule {value!r} is unknown; allowed: {_allowed()}")
    if isinstance(value, dict) and len(value) == 1:
        kind, parameter = next(iter(value.items()))
        if kind in PARAMETRISED_SCHEDULES:
            smallest, largest = PARAMETRISED_SCHEDULES[kind]
            if isinstance(parameter, numbers.Integral) and not isinstance(parameter, bool) \
                    and smallest <= parameter <= largest:
                return {kind: int(parameter)}
            raise ScheduleError(f"log_schedule {value!r}: {kind} must be an integer from {smallest} to {largest}; "
                                f"allowed: {_allowed()}")
    raise ScheduleError(f"log_schedule {value!r} is not allowed; allowed: {_allowed()}")


def logged_epochs(schedule: str | dict[str, int], epochs: int) -> list[int]:
    """Sorted distinct epochs in 0..epochs to log under `schedule`; always has 0 and `epochs`."""
    schedule = validate_schedule(schedule)
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ScheduleError(f"epochs={epochs!r} is not allowed: an integer >= 0")
    epochs = int(epochs)
    if isinstance(schedule, str):
        chosen = [e for e in range(epochs + 1) if e % _tier_step(TIERED_SCHEDULES[schedule], e) == 0]
    elif "every" in schedule:
        chosen = list(range(0, epochs + 1, schedule["every"]))
    else:
        chosen = (np.rint(np.geomspace(1, epochs + 1, schedule["log_spaced"])).astype(int) - 1).tolist()
    return sorted(set(chosen) | {0, epochs})


def _tier_step(tiers: tuple[tuple[float, int], ...], epoch: int) -> int:
    return next(step for below, step in tiers if epoch < below)
