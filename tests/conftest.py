import pytest

from costmodel import registry


@pytest.fixture
def point():
    """A checked parameter point: defaults with the given overrides."""

    def make(**overrides):
        return registry.resolve(overrides)

    return make


# Property tests draw the same examples on every run, so CI on a clean clone is reproducible;
# HYPOTHESIS_PROFILE=explore draws new ones (run it when changing the model's numerics).
import os

from hypothesis import settings

settings.register_profile("reproducible", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reproducible"))
