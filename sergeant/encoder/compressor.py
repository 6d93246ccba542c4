"""Compressors: bytes to smaller bytes and back, chosen by name from a registry."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable
from typing import NamedTuple


class Compressor(NamedTuple):
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


COMPRESSORS: dict[str, Compressor] = {
    'zlib': Compressor(zlib.compress, zlib.decompress),
    'gzip': Compressor(gzip.compress, gzip.decompress),
    'bzip2': Compressor(bz2.compress, bz2.decompress),
    'lzma': Compressor(lzma.compress, lzma.decompress),
}
