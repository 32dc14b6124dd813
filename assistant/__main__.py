"""`python -m assistant` runs the CLI (importing cli once, so command modules can import it)."""

from assistant.cli import main

main()
