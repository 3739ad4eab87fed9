"""The one exception our own checks raise for bad input.

``InputError`` is a ``ValueError`` (code that catches ``ValueError`` keeps working) raised where one of
our checks finds a flag, a file, a config field or a checkpoint it cannot use; the message names
what was wrong and what is allowed. The example scripts print it as a single
``run_glue.py: error: ...`` line and exit with status 2, as argparse does for a bad flag, while any
other exception keeps its traceback: it is a bug or an environment problem, not a typo.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input found by one of our checks; the message says what is wrong and what is allowed."""
