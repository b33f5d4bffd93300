"""pytest plugin that benchmarks/mutation.py loads into every mutmut test run: a fresh tqdm lock per session.

tqdm's default write lock holds a `multiprocessing.RLock`, a semaphore shared with every process forked
after it was made. mutmut forks one worker per mutant from a process that already ran the tests (and made
that lock). `tqdm.refresh` does not release the lock when the bar's display raises, so a mutant such as
`tqdm(..., unit=None)` makes its worker exit still holding the shared semaphore; from then on every later
worker that opens a bar (and mutmut's own tqdm monitor thread) waits on it until mutmut's wall-clock
timeout kills it. That run reads as "timeout", which mutmut counts as killed, though no test failed.

Each pytest session (so each forked worker) gets its own thread lock here, so a lock leaked by one
mutant stays inside that mutant's process.

Hypothesis runs derandomized and without its example database: a mutant is then tried on the examples
the clean run passed. With the database, an input that fails on the unmutated code too (found by chance
while one mutant ran, then stored) is replayed for every later mutant and "kills" each of them.
"""

from __future__ import annotations

import threading

from tqdm import tqdm


def _with_subclasses(cls: type) -> set[type]:
    found = {cls}
    for subclass in cls.__subclasses__():
        found |= _with_subclasses(subclass)
    return found


def pytest_configure(config) -> None:
    from hypothesis import settings

    settings.register_profile("mutation", derandomize=True, database=None)
    settings.load_profile("mutation")
    lock = threading.RLock()
    # Subclasses made later inherit the base's lock; those that already set their own are replaced too.
    for cls in _with_subclasses(tqdm):
        cls.set_lock(lock)
