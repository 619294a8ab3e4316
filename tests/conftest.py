"""Every test starts from the same random state (as autograd's test suite does).

`note_report` is the runner's report on the whole note, proved once per session
(no cache) and shared by the tests that read verdicts (claims, code generation);
`example_report(path)` does the same for each file of examples/ (the examples' and the report's tests).
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
    from derivations.outputs.assembly import run
    return run(jobs=2)


@pytest.fixture(scope="session")
def example_report():
    from derivations.outputs.assembly import run
    from derivations.running.runner import load_document
    done = {}

    def checked(path):
        if path not in done:
            doc = load_document(path)
            done[path] = (doc, run(jobs=2, document=doc))
        return done[path]
    return checked
