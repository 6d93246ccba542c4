"""Values to payload bytes and back: serializer, then optional compressor, then optional signature.

Decoding checks the signature before anything is decompressed or unpickled, so
with a signing key a worker only deserializes what a holder of the key produced.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from .. import config
from ..errors import EncodingError, SignatureError
from .compressor import COMPRESSORS, Compressor
from .serializer import SERIALIZERS, JsonSerializer, PickleSerializer, Serializer, unpickle_spliced

__all__ = ['Encoder']

_SIGNATURE_SIZE = hashlib.sha256().digest_size


class Encoder:
    """Encodes values to bytes and decodes them back, per an ``Encoder`` config."""

    def __init__(self, settings: config.Encoder | None = None) -> None:
        settings = settings or config.Encoder()
        self.settings = settings
        self.serializer: Serializer = SERIALIZERS[settings.serializer]()
        self.compressor: Compressor | None = (
            COMPRESSORS[settings.compressor] if settings.compressor is not None else None
        )
        key = settings.signing_key
        self._key = key.encode() if isinstance(key, str) else key
        self.plain_loads: Callable[[bytes], Any] | None = None
        """Without signing or compression: the serializer's bare ``loads``, which
        raises whatever its library raises (callers treat any Exception as an
        undecodable payload). Hot paths call it directly; None otherwise."""
        if self._key is None and self.compressor is None:
            self.plain_loads = _bare_loads(self.serializer)

    def decode_plain_batch(self, payloads: Sequence[bytes], offset: int = 0) -> list[Any] | None:
        """The values of many payloads decoded at once, where that is cheaper than one by one.

        Plain pickles only (no signature, no compression; see
        :func:`~.serializer.unpickle_spliced`), each ``offset`` bytes into its payload. None
        when the batch cannot be decoded so: decode its payloads one by one, which tells
        which of them is bad.
        """
        if self.plain_loads is not pickle.loads:
            return None
        return unpickle_spliced(payloads, offset)

    def encode(self, value: Any) -> bytes:
        try:
            data = self.serializer.dumps(value)
        except Exception as error:
            raise EncodingError(f'cannot serialize {type(value).__name__}: {error}') from error
        if self.compressor is not None:
            data = self.compressor.compress(data)
        if self._key is not None:
            data = hmac.digest(self._key, data, 'sha256') + data
        return data

    def decode(self, data: bytes) -> Any:
        if self._key is not None:
            signature, data = data[:_SIGNATURE_SIZE], data[_SIGNATURE_SIZE:]
            if not hmac.compare_digest(signature, hmac.digest(self._key, data, 'sha256')):
                raise SignatureError('payload signature does not match the signing key')
        try:
            if self.compressor is not None:
                data = self.compressor.decompress(data)
            return self.serializer.loads(data)
        except Exception as error:
            raise EncodingError(f'cannot decode payload: {type(error).__name__}: {error}') from error


def _bare_loads(serializer: Serializer) -> Callable[[bytes], Any]:
    """The serializer's ``loads``, without the method call around a C function where there is one."""
    if type(serializer) is PickleSerializer:
        return pickle.loads
    if type(serializer) is JsonSerializer:
        return orjson.loads
    return serializer.loads
