"""Every test starts from the same random state (as autograd's test suite does).

`note_report` is the runner's report on the whole note, proved once per session
(no cache) and shared by the tests that read verdicts (claims, code generation).
"""
import random

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(scope="session")
def note_report():
    from derivations.runner import run
    return run(jobs=2)
