"""``python -m marc_batch`` is the same as the ``marc-batch`` command."""

from marc_batch.cli.app import main

main()
