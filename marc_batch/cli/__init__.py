"""The ``marc-batch`` command line."""
