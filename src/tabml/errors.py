"""The failures a stage reports as a message and exit status 1, never as a traceback."""


class PipelineError(Exception):
    """A stage cannot go on; the message says what is wrong and where."""
