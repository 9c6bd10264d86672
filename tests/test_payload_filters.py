"""--filter parsing: typed against the payload schema, errors that name the known keys."""

import pytest

from embedder.errors import EmbedderError
from embedder.payload import parse_filters
from embedder.store.base import AllOf, Range


def test_values_are_typed_and_combined():
    assert parse_filters(["kind=video", "size=16033", "duration>10"]) == {
        "kind": "video",
        "size": 16033,
        "duration": Range(gt=10.0),
    }
    assert parse_filters(["kind==audio"]) == {"kind": "audio"}
    assert parse_filters(["kind=video,audio"]) == {"kind": ["video", "audio"]}
    assert parse_filters(["size<1e6", "size>=10"]) == {"size": AllOf((Range(lt=1e6), Range(gte=10.0)))}
    assert parse_filters(["duration=2.5"]) == {"duration": Range(gte=2.5, lte=2.5)}
    assert parse_filters(None) == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("nosuchkey=1", "unknown key 'nosuchkey'; known keys: kind (keyword), modalities (keyword)"),
        ("kind=film", "--filter kind: 'film' is not one of video, audio, item"),
        ("size=big", "--filter size: 'big' is not a number (size is int)"),
        ("kind>3", "kind is a keyword; ranges work on numeric keys only"),
        ("kind!=video", "'!=' is not supported"),
        ("size=", "no value"),
        ("just-a-word", "--filter expects key=value or key>number"),
    ],
)
def test_bad_filters_are_one_line_errors(text, message):
    with pytest.raises(EmbedderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_filters([text])
