"""The command line's subcommands that have a module of their own (compare, convert): each adds its
parser (add_parser) and runs (run); harness/cli.py dispatches to them."""
