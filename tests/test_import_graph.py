"""No import cycle among the project's modules or packages, counting imports inside functions too
(they hide cycles rather than remove them)."""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """embedder.recommend.cf -> embedder.recommend; embedder.search -> embedder.search; embedder.train.run stays."""
    parts = module.split(".")
    if parts[0] == "embedder" and len(parts) > 1 and (ROOT / "embedder" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return ".".join(parts[:2])


def import_graph(granularity) -> dict[str, set[str]]:
    modules = {module_name(p): p for d in ("embedder", "pipelines") for p in (ROOT / d).rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target not in ("embedder", "pipelines"):
                    a, b = granularity(module), granularity(target)
                    if a != b:
                        graph[a].add(b)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_cycle_between_modules():
    assert cycles(import_graph(lambda m: m)) == []


def test_no_cycle_between_packages():
    assert cycles(import_graph(package_of)) == []


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# The layers, top down (CONTRIBUTING.md draws them). A module may import its own layer and the
# layers below it, never one above: the interfaces hold the jobs layer and the facade; the jobs
# layer (the scheduler, which runs 'embedder' commands) is held by the interfaces alone; the
# facade (Library, RemoteLibrary and their interface) composes the domain; the domain (search,
# recommendation, training, privacy, checks) runs on the ingest engine and the components; the
# components (encoders, media, the store, the trained towers as encoders of stored vectors) rest
# on settings, ids and errors, which import nothing else. Every module is in exactly one layer:
# a new one must be placed here.
LAYERS = (
    ("interfaces", ("embedder.cli", "embedder.service")),
    ("jobs", ("pipelines",)),
    ("facade", ("embedder", "embedder.library", "embedder.remote", "embedder.api", "embedder.warm")),
    (
        "domain",
        (
            "embedder.search", "embedder.recommend", "embedder.train", "embedder.privacy", "embedder.personal",
            "embedder.evaluate", "embedder.duplicates", "embedder.check", "embedder.snapshots",
            "embedder.catalogue", "embedder.items", "embedder.inspection", "embedder.backfill", "embedder.samples",
        ),
    ),
    ("engine", ("embedder.engine",)),
    (
        "components",
        (
            "embedder.encoders", "embedder.media", "embedder.store", "embedder.fusion", "embedder.payload",
            "embedder.embedding", "embedder.trash", "embedder.failures", "embedder.jobs_lock", "embedder.limits",
            "embedder.progress", "embedder.lexical", "embedder.train.model", "embedder.train.config",
            "embedder.train.features", "embedder.train.inference",
        ),
    ),
    ("bottom", ("embedder.settings", "embedder.ids", "embedder.errors")),
)  # fmt: skip


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the longest prefix that names ``module`` (a module or its package)."""
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    return best[0] if best else None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m, targets in graph.items()
        for t in targets
        if layer_of(t) < layer_of(m)
    )


def test_every_module_has_a_layer():
    modules = [module_name(p) for d in ("embedder", "pipelines") for p in (ROOT / d).rglob("*.py")]
    assert [m for m in modules if m != "pipelines" and layer_of(m) is None] == []


def test_no_module_imports_a_layer_above_its_own():
    """Imports inside functions count too: a lazy import still runs upward."""
    assert upward_imports(import_graph(lambda m: m)) == []


def test_the_layer_check_finds_an_upward_import():
    graph = {"embedder.store.base": {"embedder.search"}, "embedder.search": {"embedder.store.base"}}
    assert upward_imports(graph) == ["embedder.store.base (components) imports embedder.search (domain)"]
    assert layer_of("embedder.train.inference") == 5 and layer_of("embedder.train.fit") == 3


def test_only_the_interfaces_import_the_jobs_layer():
    graph = import_graph(lambda m: m)
    holders = {m for m, targets in graph.items() for t in targets if t.startswith("pipelines")}
    assert holders and all(layer_of(m) == 0 for m in holders - {m for m in holders if m.startswith("pipelines")})
