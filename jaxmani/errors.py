"""The one exception type for user mistakes: the CLI prints it as one line, exits non-zero."""


class UserError(Exception):
    """A mistake in the user's input (a file, a flag, a config value) with a one-line message."""
