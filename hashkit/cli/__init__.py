"""The ``hashkit`` command line: one module per command in :mod:`hashkit.cli.commands`."""
