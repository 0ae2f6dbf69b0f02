"""``python -m llm_aug`` runs the CLI."""

from llm_aug.cli import main

main()
