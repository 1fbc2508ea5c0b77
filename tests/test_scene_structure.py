"""The scene package imports in one direction: its modules' import graph (module- and
function-level imports alike) has no cycle."""
import ast
import pathlib

SCENE = pathlib.Path(__file__).resolve().parent.parent / "scene"


def scene_imports() -> dict[str, set[str]]:
    """Each module of scene/ and the modules of scene/ it imports anywhere in its source."""
    mods = {p.stem for p in SCENE.glob("*.py")}
    graph = {}
    for path in SCENE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        graph[path.stem] = (deps & mods) - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state = {}                      # 1: on the current path, 2: done

    def visit(m, path):
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state and (found := visit(d, path + [d])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [m])):
            return found
    return None


def test_finds_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_scene_modules_import_without_a_cycle():
    graph = scene_imports()
    assert {"build", "camera", "effects", "shafts", "lookup", "keys"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    assert not graph["lookup"] and not graph["keys"]            # the leaves every builder may import
