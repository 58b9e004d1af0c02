import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

# Keras (and with it TensorFlow) is imported by the fixtures, not here:
# under pytest-xdist the controlling process runs no test, and importing
# TensorFlow there costs seconds of CPU for nothing.


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    import keras

    # Without Keras's full garbage collection: over a heap that holds
    # TensorFlow and a few models it takes about 0.25 s, at every one of
    # some 600 tests, and Python's own collector still frees cycles as
    # the heap grows.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def run_python():
    """Runs a child Python (`helpers.run_python`): every test that needs a
    fresh process goes through it."""
    from tests import helpers

    return helpers.run_python


@pytest.fixture
def start_python():
    """Starts a child Python without waiting (`helpers.start_python`)."""
    from tests import helpers

    return helpers.start_python


# The examples, the Markdown pages and the tutorials (all on TensorFlow)
# run in one child process, one after another, each with a fresh Keras
# session: each of these modules says what to run (`scripts(folder)`), and
# their tests share what it printed.
DOCUMENTATION_MODULES = ("tests/test_examples.py", "tests/test_docs.py",
                         "tests/test_tutorials.py")


@pytest.fixture(scope="session")
def documentation(tmp_path_factory):
    import importlib

    from tests import helpers

    folder = tmp_path_factory.mktemp("documentation")
    groups = []
    for path in DOCUMENTATION_MODULES:
        module = importlib.import_module(path[:-3].replace("/", "."))
        groups += module.scripts(folder)
    # run_notebook.py sets the tutorials' tiny step budget itself.
    sections = helpers.Sections(helpers.start_scripts(groups, cwd=folder))
    sections.folder = folder
    return sections


# Modules whose tests share a module-scoped fixture that runs child
# processes (minutes of CPU). A test worker runs such a fixture once per
# unbroken run of that module's tests, so each of these modules goes to
# one worker as a whole; every other test is scheduled on its own.
SHARED_FIXTURE_MODULES = {
    "tests/test_local_steps.py",
    "tests/test_majority_vote.py",
    "tests/test_other_backends.py",
    "tests/test_quality_benchmark.py",
}


# Optional: without pytest-xdist the suite runs in one process.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class Scheduler(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::", 1)[0]
            if module in DOCUMENTATION_MODULES:
                return "documentation"
            return module if module in SHARED_FIXTURE_MODULES else nodeid

    return Scheduler(config, log)
