"""Serializers: Python values to bytes and back, chosen by name from a registry."""

from __future__ import annotations

import datetime
import pickle
from collections.abc import Callable
from typing import Any, Protocol

import msgpack
import orjson


class Serializer(Protocol):
    """Turns a value into bytes and back; ``loads(dumps(v))`` equals ``v``."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    """Any picklable value. Only unpickle payloads you trust: use a signing key."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


_EXT_TUPLE = 1
_EXT_DATETIME = 2


class MsgpackSerializer:
    """Compact and language neutral; keeps tuples and datetimes through extension types."""

    def __init__(self) -> None:
        self._packer = msgpack.Packer(default=self._encode_ext, use_bin_type=True, strict_types=True)

    def _encode_ext(self, value: Any) -> msgpack.ExtType:
        if isinstance(value, tuple):
            # a fresh packer: the shared one is busy with the enclosing value
            return msgpack.ExtType(_EXT_TUPLE, self._pack_nested(list(value)))
        if isinstance(value, datetime.datetime):
            return msgpack.ExtType(_EXT_DATETIME, value.isoformat().encode())
        raise TypeError(f'msgpack cannot serialize {type(value).__name__}')

    def _pack_nested(self, value: Any) -> bytes:
        packed: bytes = msgpack.packb(value, default=self._encode_ext, use_bin_type=True, strict_types=True)
        return packed

    def _decode_ext(self, code: int, data: bytes) -> Any:
        if code == _EXT_TUPLE:
            return tuple(self.loads(data))
        if code == _EXT_DATETIME:
            return datetime.datetime.fromisoformat(data.decode())
        return msgpack.ExtType(code, data)

    def dumps(self, value: Any) -> bytes:
        packed: bytes = self._packer.pack(value)
        return packed

    def loads(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False, ext_hook=self._decode_ext, strict_map_key=False)


class JsonSerializer:
    """JSON through orjson: readable by any language; tuples come back as lists."""

    def dumps(self, value: Any) -> bytes:
        return orjson.dumps(value)

    def loads(self, data: bytes) -> Any:
        return orjson.loads(data)


SERIALIZERS: dict[str, Callable[[], Serializer]] = {
    'pickle': PickleSerializer,
    'msgpack': MsgpackSerializer,
    'json': JsonSerializer,
}
