"""The command-line fixtures of test_cli.py, shared with the other CLI test modules."""

from tests.cli.test_cli import batch_dir, cli, corrupt_jpeg, enrolled, store  # noqa: F401
