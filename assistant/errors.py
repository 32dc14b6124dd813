"""One exception hierarchy; the CLI turns each into one line and its exit code."""

from __future__ import annotations


class EssaError(Exception):
    """Base of every error the assistant raises on purpose."""

    exit_code = 1


class PlanError(EssaError):
    """A plan file cannot be read: the message names the file and the problem."""

    exit_code = 3

    def __init__(self, path: object, problem: str):
        self.path = printable(str(path))
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # pickled across processes (assistant/workers.py) with both arguments
        return type(self), (self.path, self.problem)


def printable(text: str) -> str:
    """A file name fit for one line: newlines and other control characters escaped."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class UnknownStateError(PlanError):
    """A plan file whose state cannot be told from the manifest or its name."""


class FetchError(EssaError):
    exit_code = 4


class IndexMissingError(EssaError):
    exit_code = 5


class IndexMismatchError(EssaError):
    """The saved index was built with another model or chunker setting."""

    exit_code = 6


class IndexCorruptError(EssaError):
    """A file of the saved index is missing, damaged or not what its manifest recorded."""

    exit_code = 8

    def __init__(self, path: object, problem: str):
        self.path = printable(str(path))
        self.problem = printable(problem)  # numpy's and json's messages may span lines
        super().__init__(f"{self.path}: {self.problem}; rebuild the index with `essa-qa index --rebuild`")

    def __reduce__(self):
        return type(self), (self.path, self.problem)


class IndexBusyError(EssaError):
    """Another `essa-qa index` (or re-tag) is writing this index right now."""

    exit_code = 9


class ConfigError(EssaError):
    exit_code = 2


class LLMError(EssaError):
    exit_code = 7
