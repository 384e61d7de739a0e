"""Errors raised by the verification core.

Every error a user can cause is a :class:`VerifyError` subclass whose message names the bad
value, so the CLI can print it on one line and the app can show it as is.
"""

from __future__ import annotations


class VerifyError(Exception):
    """Base class of every expected, user-facing error."""


# --- input decoding -------------------------------------------------------------------------
class InputError(VerifyError):
    """The input could not be read as the expected kind of sample."""


class DecodeError(InputError):
    """A file or buffer is empty, truncated, corrupt or in an unsupported format."""


class InputTooLargeError(InputError):
    """A file, image or clip exceeds the configured size limit."""


# --- sample quality ---------------------------------------------------------------------------
class QualityError(VerifyError):
    """The sample was read but is unusable for verification."""


class NoFaceError(QualityError):
    """No face was detected in the image."""


class FaceTooSmallError(QualityError):
    """The detected face is smaller than the minimum size in pixels."""


class NoSpeechError(QualityError):
    """The clip is silent or holds too little speech."""


# --- capacity ---------------------------------------------------------------------------------
class BusyError(VerifyError):
    """Too much work is already waiting: the request is refused at once; try again shortly."""


# --- models and weights -----------------------------------------------------------------------
class WeightsError(VerifyError):
    """A weights file is missing, has the wrong hash, or does not match the network."""


class ModelMismatchError(VerifyError):
    """A template was made by a different model than the one scoring it."""


class CohortMismatchError(ModelMismatchError):
    """Cohort statistics were computed against another cohort (or top-k) than the one in use."""


# --- score normalisation and calibration ------------------------------------------------------
class CalibrationError(VerifyError):
    """Scores, trials, statistics or quality measures that calibration cannot use."""


# --- configuration ----------------------------------------------------------------------------
class ConfigError(VerifyError):
    """An option has an invalid value (unknown device, security level, modality, ...)."""


def buffer_label(kind: str) -> str:
    """How errors name a sample of ``kind`` (``"image"``, ``"audio"``) given as bytes, not as a file."""
    return f"{kind} buffer"


BUFFER_LABELS = (buffer_label("image"), buffer_label("audio"))
