"""Errors that mean bad input, not a bug: the command line prints them as one clear line (exit 2).

Any other exception is a bug and keeps its traceback. This module imports nothing of the
package, so every layer may raise these.
"""


class UserError(Exception):
    """Input that cannot be used (a flag, a file, a name), with what to do instead in the message."""


class InputError(UserError, ValueError):
    """A bad value of an option, argument or keyword."""


class UnknownNameError(UserError, KeyError):
    """A task, robot, policy or other name that does not exist; the message lists what does."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SetupError(UserError, RuntimeError):
    """Something to install, start or free first (an optional extra, a Ray cluster); the message says what."""
