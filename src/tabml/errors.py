"""The failures a command reports as a message and an exit status, never as a traceback."""


class PipelineError(Exception):
    """A command cannot go on; the message says what is wrong and where.

    Exit status 1 means the data or the model failed a check; subclasses for bad
    input (settings, arguments, files) use 2, as argparse does for usage errors.
    """

    exit_code = 1


class InputError(PipelineError):
    """A setting, an argument or an input file is wrong."""

    exit_code = 2
