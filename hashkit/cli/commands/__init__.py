"""Sub-commands of ``hashkit``; each module adds one (``add_parser(subparsers)``)."""
