"""Error types. A ``UserError`` is shown as one line on stderr with exit code 2."""


class UserError(Exception):
    """A problem with the user's input (file, option, config), not a bug."""


class DataError(UserError):
    """A data file is missing, unreadable or malformed; the message names file and line."""
