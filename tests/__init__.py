"""ernte's test suite: fixtures in conftest.py, loopback servers and faults beside the tests."""
