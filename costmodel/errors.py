"""The one exception type for mistakes a person can fix.

Anything raised as :class:`UserError` is shown by the CLI as one line and exit status 2.
Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: the message names the field and says how to fix it."""
