"""Every serializer x compressor x signing combination round-trips; bad input raises clearly."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sergeant import EncodingError, SignatureError, config
from sergeant.encoder import Encoder

SERIALIZERS = ['pickle', 'msgpack', 'json']
COMPRESSORS = [None, 'zlib', 'gzip', 'bzip2', 'lzma']
KEYS = [None, 'k' * 32]
ALL = list(itertools.product(SERIALIZERS, COMPRESSORS, KEYS))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


def encoder(serializer: Any, compressor: Any, key: Any) -> Encoder:
    return Encoder(config.Encoder(compressor=compressor, serializer=serializer, signing_key=key))


@pytest.mark.parametrize(('serializer', 'compressor', 'key'), ALL)
@given(value=json_values)
def test_json_compatible_values_round_trip(serializer: str, compressor: str, key: str, value: Any) -> None:
    codec = encoder(serializer, compressor, key)

    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize('serializer', ['pickle', 'msgpack'])
def test_tuples_bytes_and_datetimes_survive(serializer: str) -> None:
    codec = encoder(serializer, None, None)
    value = {'when': datetime.datetime(2026, 1, 2, 3, 4, 5), 'pair': (1, 'two'), 'raw': b'\x00\xff'}

    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize(('serializer', 'compressor'), list(itertools.product(SERIALIZERS, COMPRESSORS)))
def test_garbage_raises_encoding_error(serializer: str, compressor: str) -> None:
    with pytest.raises(EncodingError):
        encoder(serializer, compressor, None).decode(b'\xc1\xc1 definitely not valid')


def test_signature_from_another_key_is_refused() -> None:
    payload = encoder('pickle', None, 'a' * 32).encode({'x': 1})

    with pytest.raises(SignatureError):
        encoder('pickle', None, 'b' * 32).decode(payload)


def test_unserializable_value_raises_encoding_error() -> None:
    with pytest.raises(EncodingError, match='serialize'):
        encoder('json', None, None).encode({'f': object()})


def test_compression_shrinks_repetitive_payloads() -> None:
    value = {'text': 'sergeant ' * 500}

    plain = len(encoder('pickle', None, None).encode(value))

    for name in COMPRESSORS[1:]:
        assert len(encoder('pickle', name, None).encode(value)) < plain / 5
