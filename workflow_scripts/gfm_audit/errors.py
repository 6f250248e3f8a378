"""The one exception type that reaches the user as a one-line message."""


class InputError(Exception):
    """A problem with the user's input files or config.

    The message is a single line that names the file, record or key and says
    what to do. Rule scripts print it without a traceback and exit non-zero.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
