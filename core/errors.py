"""Named domain errors. Each carries a one-line message fit for a user."""


class FewlabelError(Exception):
    """Base class: an error a user caused and can fix; the CLI prints it without a traceback."""


class ImportFormatError(FewlabelError):
    """A file could not be parsed; names the file and the line."""

    def __init__(self, path: str, line: int | None, reason: str):
        self.path, self.line, self.reason = path, line, reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class ValidationError(FewlabelError):
    """A value a user gave is not one fewlabel accepts: an unknown task, a bad label set, an
    empty or overlong name, a label outside the label set it is used with."""


class SpanError(FewlabelError):
    """A span is outside the text, empty, overlapping, or has an unknown label."""


class NotFoundError(FewlabelError):
    """A project, document or model that was asked for does not exist."""


class ConflictError(FewlabelError):
    """The request conflicts with existing state (duplicate name, a job already running)."""


class EmptyPoolError(FewlabelError):
    """There is nothing left to label or to score."""


class UnknownStrategyError(FewlabelError):
    """A query strategy that is not in core.active.strategies's registry was asked for."""


class Cancelled(FewlabelError):
    """Work stopped because a user asked it to (a job's cancel button, `fewlabel jobs --cancel`)."""


class AuthenticationError(FewlabelError):
    """A name and password that do not match an account (which of the two is wrong is not
    said: an unknown name and a wrong password read the same)."""


class AccountDisabledError(AuthenticationError):
    """The right password of an account an admin disabled (only the right one learns this)."""


class PermissionDeniedError(FewlabelError):
    """The account's role does not allow the action (core.labeling.users.ROLES)."""


class JobLost(FewlabelError):
    """A worker's job is no longer its own (reaped after a stall past its heartbeat): it
    stops and writes nothing more (core.jobs.worker.Lease)."""
