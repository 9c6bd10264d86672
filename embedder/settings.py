"""One settings object for every command.

Precedence, lowest to highest: built-in defaults < a TOML config file < ``EMBEDDER_*``
environment variables < CLI flags (passed to :func:`load_settings` as overrides).

The config file is ``--config PATH``, else ``$EMBEDDER_CONFIG``, else ``./embedder.toml`` when it
exists. Keys in the file are the field names below (``store = "..."``, ``max_frames = 16``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from embedder.errors import SettingsError

ENV_PREFIX = "EMBEDDER_"
DEFAULT_CONFIG_NAME = "embedder.toml"
MIN_SERVE_KEY_CHARS = 16


def _default_store() -> str:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data_home) / "embedder" / "store")


# The languages whose Snowball stemmer and stop words Qdrant's tokenizer has (text_language).
TEXT_LANGUAGES = frozenset(
    "arabic armenian danish dutch english finnish french german greek hungarian italian norwegian "
    "portuguese romanian russian spanish swedish tamil turkish".split()
)


class Settings(BaseSettings):
    """Every tunable of embedder. Field ``x`` is ``EMBEDDER_X`` in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # Where vectors live: a directory (embedded Qdrant Edge) or an http(s) URL (Qdrant server).
    store: str = Field(default_factory=_default_store)
    collection: str = "media"
    api_key: SecretStr | None = None  # Qdrant server API key; never logged
    timeout_s: float = Field(30.0, gt=0)  # Qdrant server request timeout

    # Models: a preset name from embedder.encoders.registry, optionally overriding one model.
    models: str = "default"
    clip_model: str | None = None
    clap_model: str | None = None
    # One content block's model, overriding the preset / clip_model / clap_model for that block
    # only: any registered model whose family encodes that modality (registry.FAMILIES).
    visual_model: str | None = None
    audio_model: str | None = None
    text_model: str | None = None
    weights_dir: Path | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # Frames per encoder batch (audio windows take half): "auto" is 32 on a CPU and 256 on a GPU,
    # halved for the rest of the run if the GPU runs out of memory.
    batch_size: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = "auto"

    # Video decoding: "auto" tries the GPU's decoder (NVDEC via torchcodec) when the encoders run on
    # CUDA, "cuda" always tries it, "cpu" never; the CPU decoders are the fallback in every case.
    video_decoder: Literal["auto", "cpu", "cuda"] = "auto"

    # Sampling limits.
    sampling: Literal["uniform", "scene"] = "uniform"
    video_fps: float = Field(1.0, gt=0, le=60)
    max_frames: int = Field(32, ge=1, le=1024)
    scene_threshold: float = Field(0.12, gt=0, lt=1)
    audio_window_s: float = Field(10.0, gt=0, le=10)  # CLAP-htsat takes 10 s; longer would be cropped
    max_audio_windows: int = Field(30, ge=1, le=1000)
    min_last_window_s: float = Field(1.0, ge=0)
    # Moments: each item is cut into segments (shots where the video has cuts, else windows of
    # about segment_s), each with its own fused vector in the "segments" multivector, for
    # 'search --moments'. Longer files get longer segments past max_segments.
    segments: bool = True
    segment_mode: Literal["shots", "windows"] = "shots"
    segment_s: float = Field(10.0, ge=1, le=600)
    max_segments: int = Field(360, ge=1, le=4096)

    # Speech: a timestamped transcript of each file's audio, for lexical search and moments.
    # "pocketsphinx" ships its US-English model in its wheel (no download; rough, about half real
    # time on one CPU core, and only the spans a voice detector keeps); "none" turns it off.
    # A registered Whisper model (whisper-large-v3-turbo, whisper-small) is the quality choice where
    # its weights exist (EMBEDDER_WEIGHTS_DIR or the Hugging Face cache). The name is checked against
    # the registry where it is used (embedder.encoders.registry.check_speech_model), like clip_model.
    speech_model: str = "pocketsphinx"
    speech_language: str = "en"
    speech_max_s: float = Field(3 * 3600.0, gt=0)  # transcribe at most this much of a file's audio
    # Lexical search: the language whose stemmer and stop words index and query words
    # (Snowball languages: english, french, german, spanish, ...; "none" for neither).
    text_language: str = "english"

    # Refuse files over these before decoding anything.
    max_width: int = Field(7680, ge=16)
    max_height: int = Field(4320, ge=16)
    max_duration_s: float = Field(4 * 3600.0, gt=0)
    max_file_mb: float = Field(20_000.0, gt=0)

    # Robustness.
    decode_timeout_s: float = Field(300.0, gt=0)
    workers: int = Field(default_factory=lambda: max(1, min(4, (os.cpu_count() or 2))), ge=1, le=64)
    include_hidden: bool = False
    # Where ingest runs its stages: "local" (decoder processes on this machine) or "ray" (decode
    # tasks and encode actors on a Ray cluster at ray_address, a local one when unset).
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    ray_encoders: int = Field(1, ge=1, le=1024)
    ray_gpus_per_encoder: float = Field(0.0, ge=0, le=16)
    # Discovery stops with a clear error past these (a root that is not what was meant: a link to /).
    discover_max_files: int = Field(1_000_000, ge=1)
    # Ten minutes walk millions of files on a local disk; a walk that needs longer is usually not the
    # folder meant (a link to a whole share), and it reports progress meanwhile.
    discover_timeout_s: float = Field(600.0, gt=0)

    # Removals: ingest drops items whose files are gone, but never a folder's worth by accident.
    # A run holds back (and reports) removals from a folder that has no media left, or of more
    # than this share of a folder's stored items, unless --prune says so.
    max_remove_fraction: float = Field(0.5, ge=0, le=1)
    trash_days: float = Field(30.0, ge=0)  # removed items stay restorable this long
    # Writes to an embedded store stop with a clear error below this much free disk (Qdrant Edge
    # dies with SIGBUS on a full disk).
    min_free_mb: float = Field(256.0, ge=0)
    snapshot_dir: str | None = None  # embedded store snapshots; default <store>-snapshots beside the store

    # Recommendation.
    interactions_db: str | None = None  # default: <store>/interactions.sqlite
    cf_factors: int = Field(64, ge=2, le=1024)
    # How play counts / ratings become ALS confidences (embedder.recommend.cf.CFParams), and the
    # rest of the ALS settings; 'embedder eval --tune --save FILE' writes tuned values here.
    cf_weighting: Literal["log1p", "bm25", "raw", "binary"] = "log1p"
    cf_alpha: float = Field(1.0, gt=0)
    cf_regularization: float = Field(0.05, ge=0)
    cf_iterations: int = Field(15, ge=1, le=1000)
    cf_bm25_k1: float = Field(1.2, gt=0)
    # Item-to-item models (embedder.recommend.itemitem: 'interactions train --model ease|rp3beta|
    # itemknn'), served as Qdrant sparse vectors: the weights kept per item, how weights become
    # the user's x_u, EASE's lambda and its catalogue limit (0: sized from the machine's memory;
    # the most popular items are kept beyond it), RP3beta's alpha and beta, item-kNN's shrinkage.
    i2i_neighbours: int = Field(200, ge=1, le=100_000)
    i2i_weighting: Literal["binary", "log1p"] = "binary"
    i2i_ease_l2: float = Field(200.0, gt=0)
    i2i_max_items: int = Field(0, ge=0)
    i2i_rp3_alpha: float = Field(1.0, gt=0)
    i2i_rp3_beta: float = Field(0.5, ge=0)
    i2i_knn_shrink: float = Field(0.0, ge=0)
    # A warm query process (embedder.warm): the first query command in a terminal starts 'serve' in
    # the background for the store, so the next ones answer at once; it exits after warm_idle_s
    # unused or when a writer needs the store. auto: only in a terminal; on; off.
    warm_queries: Literal["auto", "on", "off"] = "auto"
    warm_idle_s: float = Field(600.0, ge=0)
    # The hybrid strategy (embedder.recommend.hybrid): the collaborative model it fuses (auto: the
    # one 'interactions train --auto' chose, else ALS), the content side (content: dense vectors;
    # words: BM25 over the items' words), the fusion (rrf: weighted reciprocal rank fusion; dbsf:
    # distribution-based score fusion, unweighted), the content side's weight (0: the collaborative
    # model alone; Qdrant's weights scale positions, so they count most at a small hybrid_rrf_k)
    # and RRF's k. 'eval --tune' reports the best on validation.
    hybrid_base: Literal["auto", "cf", "ease", "rp3beta", "itemknn"] = "auto"
    hybrid_content: Literal["content", "words"] = "content"
    hybrid_fusion: Literal["rrf", "dbsf"] = "rrf"
    hybrid_content_weight: float = Field(1.0, ge=0, le=100)
    hybrid_rrf_k: int = Field(60, ge=1, le=1000)
    # Fake feedback (embedder.recommend.suspicious): a user whose profile's outlier score (the sum
    # of three squared robust z-scores: length, how mainstream, how copied) passes the threshold
    # is flagged by 'interactions suspicious'; with quarantine on, 'interactions train' leaves
    # flagged users out of every model it fits (their own requests are still answered).
    suspicious_threshold: float = Field(20.0, gt=0)
    quarantine_suspicious: bool = False
    # Whose new events move an item's popularity at once (POST /events, Library.record_events):
    # "known_users", those the last 'interactions train' saw (an account created since counts
    # from the next training, which judges it first: a burst of fake accounts moves nothing in
    # between), or "everyone". Before any training everyone counts.
    realtime_popularity: Literal["known_users", "everyone"] = "known_users"
    # A user counts toward items' popularity (the popular strategy, cold start) only once they
    # have positive events for at least this many distinct items: throwaway accounts of one or
    # two events each, the cheapest fake feedback, then move nothing (1: every user counts).
    popularity_min_items: int = Field(1, ge=1, le=1000)

    rec_dim: int = Field(64, ge=2, le=1024)  # size of the trained head's "rec" vectors
    # 'search --user': how many spreads of relevance one spread of the user's taste is worth among
    # the candidates (embedder.personal); 0 keeps the relevance order (only --seen still applies).
    personal_weight: float = Field(1.0, ge=0, le=10)
    # Interaction events older than this many days are dropped ('interactions prune', a scheduled
    # step) and never imported; None keeps them for ever.
    retention_days: float | None = Field(None, gt=0)
    # Store user ids as keyed hashes (HMAC-SHA256 with user_key, from EMBEDDER_USER_KEY, never
    # logged): the log and the store hold no raw account ids; whoever holds the key looks users
    # up by their raw id as before.
    # 'interactions import' warns when more than this share of the log's distinct items match
    # nothing in the store (a path typed another way, a catalogue id without --item-map).
    unmatched_items_warn: float = Field(0.5, ge=0, le=1)
    # POST /events (embedder.limits): what one client may write.
    max_id_chars: int = Field(256, ge=1, le=100_000)
    max_events_per_request: int = Field(1000, ge=1)
    user_events_per_minute: int = Field(600, ge=0)  # 0: no limit
    item_events_per_minute: int = Field(6000, ge=0)
    events_unknown_items: Literal["refuse", "accept"] = "refuse"
    pseudonymous_users: bool = False
    user_key: SecretStr | None = None
    # What serve's access log writes for a user id in a URL (/users/ID/..., ?user=ID): "keep",
    # "pseudonym" (the stored id: a keyed hash when pseudonymous_users) or "drop"; default: keep,
    # and pseudonym when pseudonymous_users is on.
    access_log_users: Literal["keep", "pseudonym", "drop"] | None = None

    # embedder serve: a key every API request must carry (Authorization: Bearer KEY or X-API-Key),
    # from EMBEDDER_SERVE_API_KEY, never logged; required to bind beyond loopback. The CLI sends
    # it too when it goes through a server (server: EMBEDDER_SERVER, else the store's .serve.json).
    serve_api_key: SecretStr | None = None
    server: str | None = None
    # A server's text queries through int8 copies of the text towers (CPU): about half the query
    # cost, vectors within ~0.001 cosine of fp32; items are always encoded in full precision.
    query_int8: bool = False
    thumbnails: bool = True  # a small JPEG per item at ingest (a frame, or the audio's waveform)

    # Scheduled jobs (embedder jobs list|run|serve).
    jobs_file: str = "pipelines/jobs.toml"

    # Fusion weights for visual, audio and text; renormalised over the modalities an item has.
    weight_visual: float = Field(0.5, ge=0)
    weight_audio: float = Field(0.3, ge=0)
    weight_text: float = Field(0.2, ge=0)

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError("must be auto, cpu, cuda or cuda:N")

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must be a directory or an http(s) URL")
        if "://" in value and not value.startswith(("http://", "https://")):
            raise ValueError("a URL must start with http:// or https://")
        return value

    @field_validator("server")
    @classmethod
    def _check_server(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().startswith(("http://", "https://")):
            raise ValueError("must be the http(s) URL of an 'embedder serve' (e.g. http://127.0.0.1:8080)")
        return value.strip() if value else None

    @field_validator("serve_api_key")
    @classmethod
    def _check_serve_key(cls, value: SecretStr | None) -> SecretStr | None:
        # Spaces around a key are a copy-paste slip, never part of it; a short key is guessable.
        key = value.get_secret_value().strip() if value is not None else ""
        if not key:
            return None
        if len(key) < MIN_SERVE_KEY_CHARS or any(c.isspace() for c in key):
            raise ValueError(
                f"must be at least {MIN_SERVE_KEY_CHARS} characters with no spaces "
                "(e.g. the output of 'openssl rand -hex 24')"
            )
        return SecretStr(key)

    @field_validator("collection")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError("use letters, digits, '-' and '_' only")
        return value

    @model_validator(mode="after")
    def _check_speech(self) -> Settings:
        if self.speech_model == "pocketsphinx" and self.speech_language.lower() not in ("en", "en-us", "english"):
            raise ValueError(
                f"speech_model pocketsphinx ships a US-English model only, not '{self.speech_language}'; "
                "set speech_language=en, or speech_model=none"
            )
        return self

    @field_validator("text_language")
    @classmethod
    def _check_text_language(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in TEXT_LANGUAGES:
            raise ValueError(f"must be one of {', '.join(sorted(TEXT_LANGUAGES))}")
        return value

    @model_validator(mode="after")
    def _check_weights(self) -> Settings:
        if self.weight_visual + self.weight_audio + self.weight_text <= 0:
            raise ValueError("weight_visual + weight_audio + weight_text must be positive")
        return self

    @model_validator(mode="after")
    def _check_user_key(self) -> Settings:
        if self.pseudonymous_users and not (self.user_key and self.user_key.get_secret_value()):
            raise ValueError("pseudonymous_users needs a key: set EMBEDDER_USER_KEY (keep it out of config files)")
        return self

    @property
    def access_log_user_ids(self) -> str:
        """``access_log_users`` as it applies: keep, pseudonym or drop."""
        return self.access_log_users or ("pseudonym" if self.pseudonymous_users else "keep")

    def stored_user(self, user: str) -> str:
        """The id a user has in the log and the store: the raw id, or its keyed hash
        (``pseudonymous_users``); callers pass raw ids, so lookups work for whoever holds the key."""
        if not self.pseudonymous_users:
            return user
        import hashlib
        import hmac

        digest = hmac.new(self.user_key.get_secret_value().encode(), user.encode(), hashlib.sha256).hexdigest()
        return "p:" + digest

    def fingerprint(self) -> str:
        """A digest of every setting (secrets included, never shown): two processes with the same
        fingerprint answer alike (a warm query process is reused only by commands that match it)."""
        import json

        values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self}
        values.pop("warm_idle_s", None)
        values.pop("warm_queries", None)
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def is_server(self) -> bool:
        """True when the store is a Qdrant server URL rather than a local directory."""
        return self.store.startswith(("http://", "https://"))

    @property
    def data_dir(self) -> Path:
        """Where embedder keeps files of its own for this store (the interaction log, failure
        memory, privacy audit): the store directory when embedded; for a Qdrant server, which has
        no directory of ours, the data directory beside the default store."""
        if self.is_server:
            return Path(_default_store()).parent
        return Path(self.store).expanduser()

    @property
    def serve_key(self) -> str | None:
        """``serve_api_key`` as text, ``None`` when unset or empty."""
        key = self.serve_api_key
        return key.get_secret_value() if key is not None and key.get_secret_value() else None

    @property
    def thumbnails_dir(self) -> Path:
        """Where the items' thumbnails (``<point id>.jpg``) live: per store and logical collection,
        so a blue-green rebuild (same ids) keeps them."""
        if self.is_server:
            key = hashlib.sha256(f"{self.store}|{self.collection}".encode()).hexdigest()[:16]
            return self.data_dir / "thumbnails" / key
        return self.data_dir / "thumbnails" / self.collection

    @property
    def job_lock_file(self) -> Path:
        """The file lock that lets one writing job at a time run on this store and collection
        (per server URL and collection for a server store: it guards this machine only)."""
        if self.is_server:
            key = hashlib.sha256(f"{self.store}|{self.collection}".encode()).hexdigest()[:16]
            return self.data_dir / "locks" / f"job-{key}.lock"
        return self.data_dir / f".job-{self.collection}.lock"

    @property
    def fusion_weights(self) -> dict[str, float]:
        """Base fusion weights by modality name."""
        return {"visual": self.weight_visual, "audio": self.weight_audio, "text": self.weight_text}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)


def _resolve_config_file(config_file: str | Path | None) -> Path | None:
    if config_file is None:
        config_file = os.environ.get(ENV_PREFIX + "CONFIG") or None
        if config_file is None:
            default = Path(DEFAULT_CONFIG_NAME)
            return default if default.is_file() else None
    path = Path(config_file).expanduser()
    if not path.is_file():
        raise SettingsError(f"config file {path} does not exist")
    return path


def _describe(error: dict[str, Any]) -> str:
    name = ".".join(str(p) for p in error.get("loc", ())) or "settings"
    msg = error.get("msg", "invalid value")
    if error.get("type") == "extra_forbidden":
        return f"unknown setting '{name}'"
    return f"invalid setting '{name}' ({ENV_PREFIX}{name.upper()}): {msg}"


def shipped_path(path: str | Path) -> Path:
    """``path`` itself when it exists; else, for a ``pipelines/...`` path (the job and training
    configs that ship with embedder), the copy installed with the package, so the defaults work
    from any working directory, not only from the repository root."""
    path = Path(path).expanduser()
    if path.exists() or path.is_absolute() or path.parts[:1] != ("pipelines",):
        return path
    # Read as package data, not imported: settings sit at the bottom of the layers, jobs at the top.
    from importlib.resources import files

    shipped = Path(str(files("pipelines").joinpath(*path.parts[1:])))
    return shipped if shipped.exists() else path


def read_toml(path: str | Path, what: str) -> dict:
    """A TOML file's contents, or one-line :class:`SettingsError` naming ``what`` and the file.

    ``pipelines/...`` paths fall back to the copies shipped with the package (:func:`shipped_path`).
    """
    import tomllib

    path = shipped_path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{what} {path}: {exc}") from None


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, config file, environment and ``overrides``.

    Args:
        config_file: a TOML file; ``None`` means ``$EMBEDDER_CONFIG`` or ``./embedder.toml``.
        **overrides: values from CLI flags; ``None`` values are ignored so that an unset flag
            does not hide the environment.

    Raises:
        SettingsError: one line naming the first invalid setting.
    """
    path = _resolve_config_file(config_file)
    cls = Settings
    if path is not None:
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": path})
        cls = type("Settings", (Settings,), {"model_config": config})
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(_describe(exc.errors()[0])) from None
    except ValueError as exc:  # a malformed TOML file
        raise SettingsError(f"config file {path}: {exc}") from None
