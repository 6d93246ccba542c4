"""Serializers: Python values to bytes and back, chosen by name from a registry."""

from __future__ import annotations

import datetime
import operator
import pickle
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgpack
import orjson


class Serializer(Protocol):
    """Turns a value into bytes and back; ``loads(dumps(v))`` equals ``v``."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


# Protocol 3 writes its memo at explicit indices (BINPUT), counted from 0 in every pickle; 4 and 5
# append to it (MEMOIZE) and read it back by absolute index. So the bodies of many protocol-3
# pickles put one after the other unpickle in one call to what each gives alone: every index a
# body reads is one it wrote itself before (see unpickle_spliced). Protocols 4 and 5 add nothing a
# task needs (objects over 4 GB, out-of-band buffers, compact sets).
PICKLE_PROTOCOL = 3
_LAST_BYTE = operator.itemgetter(-1)
_STOP = pickle.STOP[0]
_SPLICE_START = pickle.MARK
_SPLICE_END = pickle.LIST + pickle.STOP


class PickleSerializer:
    """Any picklable value. Only unpickle payloads you trust: use a signing key."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=PICKLE_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


def unpickle_spliced(payloads: Sequence[bytes], offset: int = 0) -> list[Any] | None:
    """What each of ``payloads`` unpickles to, in one call to the unpickler instead of one each.

    Only for pickles of :data:`PICKLE_PROTOCOL` (or older: all of them write their memo at
    explicit indices), each ending at its STOP opcode: their bodies go into one list. ``offset``:
    each pickle starts that many bytes into its payload (after a header of the broker's). None
    when a payload is not such a pickle, or the list does not come out one value per payload
    (a payload that is corrupt, or not a pickle): decode those one by one. Unpickling anything
    runs code its writer chose; that one payload can disturb the values of its neighbours
    here changes nothing about whom to trust (sign payloads you do not produce yourself).
    """
    try:
        if set(map(operator.itemgetter(offset + 1), payloads)) != {PICKLE_PROTOCOL}:  # after PROTO
            return None
        if set(map(_LAST_BYTE, payloads)) != {_STOP}:
            return None
        bodies = map(operator.itemgetter(slice(offset, -1)), payloads)  # without their STOP
        values = pickle.loads(_SPLICE_START + b''.join(bodies) + _SPLICE_END)
    except Exception:  # a payload too short to check, or one the unpickler refuses
        return None
    return values if type(values) is list and len(values) == len(payloads) else None


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
