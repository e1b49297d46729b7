"""User-facing errors: each says what was wrong, where, and what to do."""


class MaskscopeError(Exception):
    """An expected failure reported to the user without a traceback."""


class ParamsError(MaskscopeError):
    """An invalid parameter file, key or value."""


class AudioError(MaskscopeError):
    """Audio that cannot be used: corrupt, empty, wrong rate or not mono."""


class MissingInputError(MaskscopeError):
    """An input a stage needs does not exist yet."""


class ToolMissingError(MaskscopeError):
    """A Debian tool the stage needs is not installed."""


class InputFormatError(MaskscopeError):
    """An input file exists but does not have the expected format."""
