"""Declared interfaces and their implementations, parameter by parameter (names, kinds, defaults):
Library and RemoteLibrary implement embedder.api.LibraryAPI, so the CLI holds either; the local and
Ray executors implement embedder.engine.stages.Executor, so an ingest runs on either."""

import inspect

import pytest

from embedder.api import LibraryAPI
from embedder.library import Library
from embedder.remote import RemoteLibrary

METHODS = [name for name in vars(LibraryAPI) if not name.startswith("_") or name in ("__enter__", "__exit__")]


@pytest.mark.parametrize("cls", [Library, RemoteLibrary])
@pytest.mark.parametrize("name", METHODS)
def test_both_libraries_match_the_interface_parameter_by_parameter(cls, name):
    wanted = inspect.signature(getattr(LibraryAPI, name)).parameters
    have = inspect.signature(getattr(cls, name)).parameters
    assert list(have) == list(wanted), (cls.__name__, name)
    for key, param in wanted.items():
        assert (have[key].kind, have[key].default) == (param.kind, param.default), (cls.__name__, name, key)


def test_the_interface_covers_what_the_commands_call():
    assert set(METHODS) >= {"search", "recommend", "similar", "similar_users", "status", "ingest", "close"}
    assert issubclass(Library, LibraryAPI) and issubclass(RemoteLibrary, LibraryAPI)


@pytest.mark.parametrize("cls", ["LocalExecutor", "RayExecutor"])
def test_both_executors_match_the_executor_interface(cls, tmp_path):
    from embedder.engine import ray_executor, stages
    from embedder.engine.ingest import executor_for
    from embedder.settings import Settings
    from embedder.store import open_store

    executor = getattr(stages, cls, None) or getattr(ray_executor, cls)
    wanted = inspect.signature(stages.Executor.run).parameters
    have = inspect.signature(executor.run).parameters
    assert [(k, p.kind, p.default) for k, p in have.items()] == [(k, p.kind, p.default) for k, p in wanted.items()]
    assert issubclass(executor, stages.Executor)
    # The settings choose between them.
    settings = Settings(store=str(tmp_path / "store"), executor="ray" if cls == "RayExecutor" else "local")
    with open_store(settings) as store:
        assert type(executor_for(settings, store)).__name__ == cls
