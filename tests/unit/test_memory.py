import sys

import pytest

from translate.memory import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_keep_freed_memory_applies_on_glibc():
    assert keep_freed_memory() is True
