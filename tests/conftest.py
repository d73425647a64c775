import pytest

from costmodel import registry


@pytest.fixture
def point():
    """A checked parameter point: defaults with the given overrides."""

    def make(**overrides):
        return registry.resolve(overrides)

    return make
