"""The server's query path: int8 copies of the text towers for queries, items untouched."""

import numpy as np


def test_int8_queries_stay_close_to_fp32_and_leave_item_encoding_alone(media):
    from embedder.encoders.bundle import load_encoders
    from embedder.media.decode import DecodeOptions, decode_item
    from embedder.media.video import SamplingOptions
    from embedder.settings import load_settings

    encoders = load_encoders(load_settings(models="tiny", device="cpu"))
    texts = ["a red circle", "rain on a roof", "a speech about rockets"]
    full = encoders.encode_queries(texts)
    item = decode_item(str(media["h264.mp4"]), DecodeOptions(sampling=SamplingOptions(max_frames=2, image_size=64)))
    before = {m: encoders[m].encode_items([item])[0] for m in ("visual", "text")}

    assert set(encoders.quantize_queries().values()) == {True}
    quick = encoders.encode_queries(texts)
    for a, b in zip(full, quick):
        for m in a:
            cosine = float(np.dot(a[m], b[m]))
            assert 0.99 < cosine < 1.0 - 1e-7, (m, cosine)  # close, and really another computation
    for m, vector in before.items():  # the towers items go through are still fp32
        assert np.array_equal(encoders[m].encode_items([item])[0], vector)
