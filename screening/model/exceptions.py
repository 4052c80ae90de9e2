"""Errors of the model domain."""


class ModelMismatchError(RuntimeError):
    """A model artifact does not match this code or has been altered; the message says what differs."""
