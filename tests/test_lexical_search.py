"""Search what is said and written: transcripts (real speech, offline recogniser), subtitles and
sidecar text through the engine's BM25, alone and fused with the dense side, on real files."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from embedder import Library
from embedder.errors import EmbedderError
from embedder.settings import load_settings
from tests.cli_runner import run_cli
from tests.conftest import SHIPPED_MEDIA

SPOKEN = "nasa_13013.mp4.audio.mp3"  # the narration's audio alone: no subtitles, only speech
SUBTITLED = "balloon.mp4"
SIDECAR = "kites.mp4"


@pytest.fixture(scope="module")
def library(tmp_path_factory, media):
    root = tmp_path_factory.mktemp("lexical")
    folder = root / "media"
    folder.mkdir()
    shutil.copy(SHIPPED_MEDIA / SPOKEN, folder / SPOKEN)
    for name in ("tone.mp3", "vp9.webm", "long.mp4"):
        shutil.copy(media[name], folder / name)
    shutil.copy(media["h264.mp4"], folder / SUBTITLED)
    (folder / "balloon.srt").write_text(
        "1\n00:00:00,200 --> 00:00:01,000\nA quiet street at dawn\n\n"
        "2\n00:00:01,000 --> 00:00:02,500\nThe red balloon floats over the harbour\n"
    )
    shutil.copy(media["scene.mp4"], folder / SIDECAR)
    (folder / "kites.json").write_text(
        json.dumps({"title": "Children chase paper kites", "description": "A windy afternoon", "tags": ["park"]})
    )
    settings = load_settings(
        store=str(root / "store"), models="tiny", device="cpu", workers=1, max_frames=2, speech_model="pocketsphinx"
    )
    lib = Library.open(settings)
    summary = lib.ingest([str(folder)])
    assert not summary.failed
    yield lib, folder
    lib.close()


def _top(hits):
    return hits[0].path.rsplit("/", 1)[-1] if hits else None


def test_a_phrase_said_in_a_recording_finds_it_at_the_moment_it_is_said(library):
    lib, _ = library
    for mode in ("lexical", "hybrid"):
        hits = lib.search("goddard space flight center", mode=mode, moments=True, limit=3)
        assert _top(hits) == SPOKEN and hits[0].mode == mode
        said = hits[0].matches[0]
        assert said["where"] == "transcript" and {"goddard", "space", "flight", "center"} <= set(said["words"])
        assert 7.0 < said["start"] < 11.0  # the narrator says it at about 9 s
        assert hits[0].moment.said == said["text"] and hits[0].moment.start <= said["start"] < hits[0].moment.end + 1
    stored = lib.media.retrieve([lib.search("goddard", mode="lexical")[0].id])[0].payload
    assert stored["speech_model"] == "pocketsphinx" and stored["transcript"]["lines"]


def test_subtitles_and_sidecar_text_are_found_by_their_exact_words(library):
    lib, _ = library
    hits = lib.search("red balloon floats", mode="lexical", moments=True)
    assert _top(hits) == SUBTITLED and len(hits) == 1  # no other item has these words
    assert hits[0].matches[0]["where"] == "subtitle" and hits[0].matches[0]["start"] == pytest.approx(1.0)
    assert hits[0].moment.start <= 1.0 < hits[0].moment.end
    kites = lib.search("chasing", mode="lexical")  # stemmed alike: "chase" in the sidecar's title
    assert _top(kites) == SIDECAR and kites[0].matches[0]["where"] == "text"
    assert kites[0].matches[0]["words"] == ["chase"]
    assert _top(lib.search("tone", mode="lexical")) == "tone.mp3"  # the file name is words too


def test_quoted_phrases_match_in_order_in_every_mode(library):
    lib, _ = library
    for mode in ("lexical", "hybrid", "dense"):
        assert [_top(lib.search('"paper kites"', mode=mode))] == [SIDECAR]
        assert lib.search('"kites paper"', mode=mode) == []
    assert len(lib.search('"paper kites" children', mode="hybrid")) == 1


def test_hybrid_sides_add_up_and_filters_apply(library):
    lib, _ = library
    hits = lib.search("red balloon harbour", mode="hybrid", limit=10)
    assert _top(hits) == SUBTITLED
    for hit in hits:
        fused = hit.sides["fused"]
        assert fused["dense"] + fused["lexical"] == pytest.approx(hit.score, abs=2e-6)
        assert (hit.sides["lexical"] is None) == (fused["lexical"] == 0)
    # the subtitled video is first on both sides' ranks: 1/(60+0) each
    assert hits[0].sides["fused"]["lexical"] == pytest.approx(1 / 60, abs=1e-6)
    dbsf = lib.search("red balloon harbour", mode="hybrid", fusion="dbsf", limit=10)
    assert _top(dbsf) == SUBTITLED and all(0 <= h.sides["fused"]["lexical"] <= 1 for h in dbsf)
    audio_only = lib.search("goddard balloon", mode="lexical", filters=["kind=audio"])
    assert {h.kind for h in audio_only} == {"audio"} and _top(audio_only) == SPOKEN


def test_min_score_is_on_the_similarity_a_person_reads(library):
    lib, _ = library
    hybrid = lib.search("red balloon harbour", mode="hybrid", limit=10)
    cut = sorted(h.sides["dense"] for h in hybrid)[len(hybrid) // 2]
    kept = lib.search("red balloon harbour", mode="hybrid", limit=10, min_score=cut)
    # the fused scores are all below 0.04: a cosine threshold must not drop every hit
    assert kept and {h.id for h in kept} == {h.id for h in hybrid if h.sides["dense"] >= cut}
    lexical = lib.search("red balloon harbour", mode="lexical", min_score=0.1)
    assert [h.path.rsplit("/", 1)[-1] for h in lexical] == [SUBTITLED]


def test_lexical_search_needs_no_models_and_stop_words_alone_are_refused(library):
    import subprocess
    import sys

    lib, _ = library
    lib.media.pause()  # let another process in
    probe = (
        "import sys; from embedder import Library; from embedder.settings import load_settings; "
        f"lib = Library.open(load_settings(store={lib.settings.store!r}, models='tiny')); "
        "hits = lib.search('goddard', mode='lexical'); "
        "print(hits[0].path.rsplit('/', 1)[-1], 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [SPOKEN, "False"], done.stderr  # found, and no model (torch) loaded
    with pytest.raises(EmbedderError, match="no searchable words"):
        lib.search("the of and", mode="lexical")
    assert all(h.mode == "dense" for h in lib.search("the of and", mode="hybrid"))  # nothing for BM25


def test_engine_bm25_is_exactly_okapi_bm25_with_the_collections_statistics(library):
    """Recompute each lexical score from the stored words with the textbook formula."""
    from embedder.lexical import _WORD, _term, document, token_count

    lib, _ = library
    records = [r for r in lib.media.scroll() if r.payload.get("lexical", {}).get("tokens")]
    avg = float(np.mean([r.payload["lexical"]["tokens"] for r in records]))
    assert all(r.payload["lexical"]["avg_len"] == pytest.approx(avg, rel=0.1) for r in records)  # refreshed
    terms = {
        r.id: [t for t in (_term(w.lower(), "english") for w in _WORD.findall(document(r.payload))) if t]
        for r in records
    }
    query = "goddard flight balloon harbour kites tone"
    wanted = {_term(w, "english") for w in query.split()}
    n = len(records)

    def bm25(rid: str) -> float:
        score = 0.0
        length = r_len[rid]
        written_avg = avg_of[rid]
        for term in wanted:
            df = sum(term in set(t) for t in terms.values())
            tf = terms[rid].count(term)
            if not tf:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / written_avg))
        return score

    r_len = {r.id: token_count(document(r.payload), "english") for r in records}
    avg_of = {r.id: r.payload["lexical"]["avg_len"] for r in records}
    hits = lib.search(query, mode="lexical", limit=20)
    assert len(hits) >= 4
    for hit in hits:
        assert hit.score == pytest.approx(bm25(hit.id), rel=2e-3)


def test_transcripts_through_the_cli_and_the_trash(library, tmp_path):
    lib, folder = library
    lib.close()  # the commands below are other processes
    env = {"EMBEDDER_STORE": lib.settings.store, "EMBEDDER_MODELS": "tiny", "EMBEDDER_SPEECH_MODEL": "pocketsphinx"}
    vtt = run_cli("items", "transcript", str(folder / SPOKEN), "--format", "vtt", env=env).stdout
    assert vtt.startswith("WEBVTT") and "goddard space flight center" in vtt
    missing = run_cli("items", "transcript", str(folder / SIDECAR), env=env, code=2).stderr
    assert "has no transcript" in missing and "Traceback" not in missing
    shown = run_cli("search", "goddard space", "--mode", "lexical", "--explain", env=env).stdout
    assert SPOKEN in shown.replace("\n", "").replace(" ", "") or "nasa_13013" in shown
    assert "transcript" in shown and "BM25" in shown
    # Deleted into the trash and restored by the next ingest: its words and transcript come back.
    run_cli("items", "delete", str(folder / SPOKEN), env=env)
    assert "nasa_13013" not in run_cli("search", "goddard", "--mode", "lexical", "--json", env=env).stdout
    run_cli("ingest", str(folder), env=env)
    back = json.loads(run_cli("search", "goddard", "--mode", "lexical", "--json", env=env).stdout)
    assert back["mode"] == "lexical" and back["hits"][0]["path"].endswith(SPOKEN)
    assert back["hits"][0]["matches"][0]["where"] == "transcript"


def test_a_qdrant_server_collection_searches_words_and_an_old_one_stays_dense(tmp_path, media, in_process_server):
    from qdrant_client import models

    from embedder.store.server import _SHARED_CLIENTS

    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(media["h264.mp4"], folder / SIDECAR)
    (folder / "kites.json").write_text(json.dumps({"title": "Children chase paper kites"}))
    shutil.copy(media["tone.mp3"], folder / "tone.mp3")
    settings = load_settings(store=in_process_server, models="tiny", device="cpu", workers=1, max_frames=2)
    with Library.open(settings) as lib:
        lib.ingest([str(folder)])
        assert _top(lib.search("kites", mode="lexical")) == SIDECAR
        assert [_top(lib.search('"paper kites"', mode="hybrid"))] == [SIDECAR]
        assert lib.search("kites", limit=2)[0].mode == "hybrid"
    # A collection made before lexical search, on a server: dense search as before, a clear error for words.
    client = _SHARED_CLIENTS[in_process_server]
    client.create_collection("old_v1", vectors_config={"content": models.VectorParams(size=4, distance="Cosine")})
    from embedder.search import search_mode
    from embedder.store.server import ServerStore

    old = ServerStore(client, "old_v1", in_process_server, owns_client=False)
    assert search_mode(old, "auto") == "dense"
    with pytest.raises(EmbedderError, match="no lexical index"):
        search_mode(old, "lexical")


def test_a_speech_model_change_is_stale_and_rebuilt_blue_green(tmp_path):
    from embedder.engine.reembed import find_stale, run_reembed

    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(SHIPPED_MEDIA / SPOKEN, folder / SPOKEN)
    quiet = load_settings(store=str(tmp_path / "store"), models="tiny", device="cpu", workers=1, speech_model="none")
    with Library.open(quiet) as lib:
        lib.ingest([str(folder)])
        assert lib.search("goddard", mode="lexical") == []  # nothing heard: only the file name is words
    heard = quiet.model_copy(update={"speech_model": "pocketsphinx"})
    with Library.open(heard) as lib:
        assert [s.causes for s in find_stale(lib.media, heard).stale] == [["speech"]]
    report = run_reembed(heard)
    assert report["causes"] == {"speech": 1} and report["rebuild"]["switched"] is True
    assert report["rebuild"]["target"].endswith("_v2") and report["rebuild"]["rebuilt"] == 1
    with Library.open(heard) as lib:
        hits = lib.search("goddard space flight", mode="lexical")
        assert _top(hits) == SPOKEN and hits[0].matches[0]["where"] == "transcript"
        assert find_stale(lib.media, heard).stale == []
