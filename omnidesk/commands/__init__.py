"""One module per `omnidesk` subcommand; each has register(subparsers)."""
