"""netops.procs: stopping on a signal without a lock (StopOnSignal)."""
from __future__ import annotations

import os
import signal

from jinbao_netops.procs import StopOnSignal


def test_a_signal_stops_the_wait_and_the_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal() as stop:
        assert not stop.wait(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5) and stop.is_set()
    assert signal.getsignal(signal.SIGTERM) is before
