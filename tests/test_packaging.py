"""Packaging: the layout, pyproject.toml vs environment.yml, README's commands vs .ci/run, and
rules the code base keeps (no torchvision, GLCIC_SMOKE read in one place)."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "glcic_lib"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _environment_pip_deps() -> tuple[list[str], list[str]]:
    """(conda dependencies, pip dependencies) of environment.yml, read without a YAML library
    (the file is a plain two-level list)."""
    conda, pip, in_pip = [], [], False
    section = None
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            section = line.split(":", 1)[0]
            in_pip = False
            continue
        if section != "dependencies":
            continue
        item = line.strip()
        if not item.startswith("- "):
            continue
        item = item[2:].strip()
        if item == "pip:":
            in_pip, pip_indent = True, indent
            continue
        if in_pip and indent > pip_indent:
            pip.append(item)
        else:
            in_pip = False
            conda.append(item)
    return conda, pip


def test_layout():
    for name in ("notebooks", "glcic_lib", "data", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("environment.yml", "README.md", "pyproject.toml", ".ci/run"):
        assert (ROOT / name).is_file(), name
    assert (ROOT / ".ci/run").stat().st_mode & 0o111, ".ci/run must be executable"


def test_pyproject_basics():
    project = _pyproject()["project"]
    assert project["requires-python"] == ">=3.10"
    assert project["scripts"] == {"glcic": "glcic_lib.cli:run"}
    names = {_requirement_name(r) for r in project["dependencies"]}
    for needed in ("torch", "numpy", "matplotlib", "ipywidgets", "ipycanvas", "jupyterlab", "tqdm"):
        assert needed in names, needed
    assert any(n.startswith("opencv") for n in names)
    assert {"scikit-image", "torchmetrics"} & names  # a maintained metrics library
    assert "torchvision" not in names


def test_environment_yml_names_the_same_dependencies():
    conda, pip = _environment_pip_deps()
    project = _pyproject()["project"]
    assert "-e ." in pip, "environment.yml must install the project itself"
    env = sorted(p.replace(" ", "") for p in pip if p != "-e .")
    deps = sorted(r.replace(" ", "") for r in project["dependencies"])
    assert env == deps  # names and version ranges
    python = [c for c in conda if c.startswith("python")]
    assert python == ["python" + project["requires-python"]]


def _fenced_blocks(text: str) -> list[list[str]]:
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_readme_commands_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    blocks = _fenced_blocks(readme)
    assert len(blocks) >= 2
    open_cmd = [l for l in blocks[0] if l.strip() and not l.startswith("#")]
    test_cmd = [l for l in blocks[1] if l.strip() and not l.startswith("#")]
    assert len(open_cmd) == 1 and len(test_cmd) == 1, "each of the two first blocks holds one command"
    assert "jupyter lab" in open_cmd[0] and "notebooks/" in open_cmd[0]
    assert "pytest" in test_cmd[0]
    # the two commands come first: nothing but the title and one line of prose before them
    assert readme.index("```") < 400
    ci = [l.strip() for l in (ROOT / ".ci/run").read_text().splitlines()]
    assert test_cmd[0].strip() in ci, ".ci/run must call the README's test command verbatim"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_torchvision_anywhere():
    offenders = [p.relative_to(ROOT) for p in PACKAGE.rglob("*.py") if "torchvision" in _imports(p)]
    offenders += [p.relative_to(ROOT) for p in ROOT.glob("notebooks/*.ipynb") if "import torchvision" in p.read_text()
                  or "from torchvision" in p.read_text()]
    assert not offenders, f"torchvision must not be used: {offenders}"


# os.environ["GLCIC_SMOKE"], os.environ.get("GLCIC_SMOKE"), os.getenv("GLCIC_SMOKE") (quotes may be
# escaped inside a notebook's JSON)
READS_SMOKE = re.compile(r"""(environ\s*(\.get\s*\(|\[)|getenv\s*\()\s*\\?["']GLCIC_SMOKE""")


def test_smoke_mode_is_read_in_one_place():
    readers = [p.relative_to(ROOT).as_posix() for p in list(PACKAGE.rglob("*.py")) + list(ROOT.glob("notebooks/*.ipynb"))
               if READS_SMOKE.search(p.read_text())]
    assert readers == ["glcic_lib/config.py"]


@pytest.mark.parametrize("command", ["inpaint", "bench"])
def test_core_commands_are_registered(command):
    import importlib

    from glcic_lib.cli import COMMANDS

    module = importlib.import_module(COMMANDS[command][0])
    assert callable(module.configure_parser) and callable(module.main)


def test_public_api():
    import glcic_lib

    for name in ("CompletionNetwork", "LocalDiscriminator", "GlobalDiscriminator", "ContextDiscriminator",
                 "complete", "load_pretrained", "__version__"):
        assert hasattr(glcic_lib, name), name
    assert glcic_lib.__version__ == _pyproject()["project"]["version"]


# ---------------------------------------------------------------------------- the repository URL
def test_repository_url_is_written_once_in_pyproject(tmp_path, monkeypatch):
    from glcic_lib import config

    url = _pyproject()["project"]["urls"]["Repository"]
    assert url == "https://github.com/glcic-course/glcic-course"
    assert config.REPO_URL == url == config.repository_url()
    hard_coded = [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if url in p.read_text()]
    assert hard_coded == [], f"the URL is written in {hard_coded}: read glcic_lib.config.REPO_URL instead"
    # Python 3.10 has no tomllib: the same answer read by hand
    monkeypatch.setitem(sys.modules, "tomllib", None)
    assert config._pyproject_repo_url(ROOT / "pyproject.toml") == url
    other = tmp_path / "pyproject.toml"
    other.write_text('[project]\nname = "something_else"\n[project.urls]\nRepository = "https://x.org/y"\n')
    assert config._pyproject_repo_url(other) is None  # not our project
    monkeypatch.delitem(sys.modules, "tomllib")
    assert config._pyproject_repo_url(other) is None


def test_repository_url_from_the_installed_metadata(tmp_path, monkeypatch):
    """An installed copy without the repository next to it reads the Project-URL metadata."""
    from importlib import metadata

    from glcic_lib import config

    monkeypatch.setattr(config, "REPO_DIR", tmp_path)  # no pyproject.toml there
    fake = {"Project-URL": ["Homepage, https://example.org", "Repository, https://git.example.org/course"]}

    class Meta:
        def get_all(self, key):
            return fake.get(key)

    monkeypatch.setattr(metadata, "metadata", lambda name: Meta())
    assert config.REPO_URL == "https://git.example.org/course"
    fake.clear()
    with pytest.raises(RuntimeError, match=r"glcic_lib's repository URL is unknown: neither .*pyproject\.toml nor the "
                                           r"installed package's metadata has \[project\.urls\] Repository"):
        config.repository_url()


# ---------------------------------------------------------------------------- the Colab installer
def _colab_install():
    import importlib.util

    spec = importlib.util.spec_from_file_location("colab_install", PACKAGE / "colab_install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_colab_installer_uses_only_the_standard_library():
    assert _imports(PACKAGE / "colab_install.py") <= {"__future__", "re", "subprocess", "sys", "tempfile", "importlib",
                                                       "pathlib", "tomllib", "packaging"}
    assert "from ." not in (PACKAGE / "colab_install.py").read_text()  # runs before glcic_lib is importable


def test_colab_installer_installs_only_what_is_missing_and_never_torch():
    ci = _colab_install()
    deps = ci.dependencies(ROOT)
    assert deps == _pyproject()["project"]["dependencies"]
    colab = {"torch": "2.5.1+cu121", "numpy": "1.26.4", "opencv-python": "4.10.0.84", "matplotlib": "3.8.0",
             "ipywidgets": "7.7.1", "tqdm": "4.66.5", "scikit-image": "0.24.0", "scipy": "1.13.1"}
    todo = ci.missing(deps, colab)
    assert [_requirement_name(r) for r in todo] == ["ipywidgets", "ipycanvas", "anywidget", "torchfile"]
    everything = {_requirement_name(r): "99" for r in deps} | {"opencv-python-headless": "4.9"}
    assert ci.missing(deps, everything) == []
    assert ci.missing(["torch>=99", "jupyterlab>=99"], {}) == []  # never installed by us


def test_colab_installer_pins_torch(monkeypatch, capsys):
    ci = _colab_install()
    calls, pins = [], []

    def fake_run(cmd, check):
        calls.append(cmd)
        if "-c" in cmd:
            pins.append(Path(cmd[cmd.index("-c") + 1]).read_text())

    monkeypatch.setattr(ci.subprocess, "run", fake_run)
    monkeypatch.setattr(ci, "installed_distributions", lambda: {"torch": "2.5.1+cu121", "numpy": "2.0"})
    assert ci.main([str(ROOT)]) == 0
    assert calls[0][-4:] == ["-q", "--no-deps", "-e", str(ROOT)]
    assert pins == ["torch==2.5.1+cu121\n"]
    installed = [_requirement_name(r) for r in calls[1][calls[1].index("-c") + 2:]]
    assert "torch" not in installed and "numpy" not in installed and "jupyterlab" not in installed
    assert "opencv-python-headless" in installed and "torchfile" in installed
    assert "installing" in capsys.readouterr().out
    assert ci.main([]) == 2
