"""A reader for the IDX format MNIST is distributed in (LeCun et al., http://yann.lecun.com/exdb/mnist/).

An IDX file is a tiny header followed by one big-endian array::

    bytes 0-1   0x00 0x00                         (magic: always zero)
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4 * d       each dimension's size, unsigned 32-bit big-endian
    the rest    prod(dims) values of that dtype, big-endian, C order

MNIST's label files are ``(N,)`` uint8 (magic ``0x00000801``); its image files ``(N, 28, 28)`` uint8
(magic ``0x00000803``). Files may be gzip-compressed (as downloaded) or raw; :func:`read_idx` tells the
two apart by the gzip signature, not by the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

#: IDX dtype code -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_SIGNATURE = b"\x1f\x8b"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a NumPy array of native byte order.

    Returns e.g. ``(60000, 28, 28) uint8`` for ``train-images-idx3-ubyte.gz`` and ``(60000,) uint8`` for
    ``train-labels-idx1-ubyte.gz``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the problem for a file
    that is not IDX (bad magic number, unknown dtype code), is truncated or has trailing bytes, or is a
    damaged gzip stream; the message says to delete the file and download it again.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {path}")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_SIGNATURE:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
            raise ValueError(
                f"{path} is a damaged gzip file ({error}); it is probably a partial download: delete it and download it again"
            ) from error
    return parse_idx(raw, source=str(path))


def parse_idx(raw: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse the (already decompressed) bytes of an IDX file; see :func:`read_idx`."""
    fix = "delete it and download it again"
    if len(raw) < 4:
        raise ValueError(f"{source} is not an IDX file: only {len(raw)} bytes, shorter than the 4-byte magic number; {fix}")
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"{source} is not an IDX file: bad magic number 0x{raw[:4].hex()} (an IDX file starts with two zero bytes, "
            f"e.g. 0x00000803 for images, 0x00000801 for labels); {fix}"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"{source}: bad magic number 0x{raw[:4].hex()}: unknown IDX dtype code 0x{code:02X} (known: {known}); {fix}")
    if ndim == 0:
        raise ValueError(f"{source}: bad magic number 0x{raw[:4].hex()}: the number of dimensions is 0; {fix}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{source} is truncated inside its header ({len(raw)} of {header} bytes); {fix}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise ValueError(
            f"{source} is truncated: its header promises shape {dims} ({expected:,} bytes of data) but only "
            f"{found:,} bytes follow; {fix}"
        )
    if found > expected:
        raise ValueError(
            f"{source} has {found - expected:,} unexpected bytes after the shape {dims} its header declares; {fix}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)
