# The interface of _body_readers.c (compiled by hatch_build.py).

class RowReader:
    """Reads rows of the numeric keys (names whose JSON needs no escape) from bodies."""

    def __init__(self, keys: tuple[bytes, ...], /) -> None: ...
    def read(self, body: bytes, max_rows: int, /) -> tuple[bytes, int, bool] | None:
        """float64 [rows, keys] bytes in the keys' order, the row count and whether the
        body was one object, for a body of plain numeric rows; None for any other."""

class V2RowReader:
    """Reads the rows of inference requests, a tensor per numeric key, from bodies."""

    def __init__(
        self,
        keys: tuple[bytes, ...],
        lower: tuple[float, ...],
        upper: tuple[float, ...],
        integral: tuple[bool, ...],
        /,
    ) -> None: ...
    def read(self, body: bytes, max_rows: int, /) -> tuple[bytes, int, str | None] | None:
        """float32 [rows, keys] bytes in the keys' order, the row count and the request's
        id, for a request of one tensor per key, each of the same 1 to max_rows rows and
        every value within its bounds; None for any other."""
