"""The test suite; shared helpers are in `tests.helpers`, fixtures and hooks in `conftest.py`."""
