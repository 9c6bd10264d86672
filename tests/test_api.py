"""Library and RemoteLibrary implement one declared interface (embedder.api.LibraryAPI): the same
methods with the same parameters, names, kinds and defaults, so the CLI holds either."""

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
