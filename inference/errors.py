"""The errors the pipeline reports to the user as one clear line."""


class Photo3DError(Exception):
    """Base of the errors whose message is meant for the user as it is."""


class InputError(Photo3DError):
    """Bad input: missing, unreadable, corrupt, wrong size or format."""


class Cancelled(Photo3DError):
    """The user cancelled the run."""

    def __init__(self, msg: str = "cancelled"):
        super().__init__(msg)
