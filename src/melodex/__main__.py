"""``python -m melodex``: the same as the ``melodex`` command."""

from melodex.cli import main

main()
