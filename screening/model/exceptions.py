"""Errors of the model domain."""

from screening.log_redaction import Reason


class ModelMismatchError(Reason, RuntimeError):
    """A model artifact does not match this code or has been altered; the message says what differs."""
