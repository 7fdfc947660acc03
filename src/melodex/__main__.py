"""``python -m melodex``: the same as the ``melodex`` command."""

from melodex.quick import console

console()
