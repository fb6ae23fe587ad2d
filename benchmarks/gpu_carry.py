"""The wheels the GPU suite needs that the GPU machine lacks: built here, activated there.

Usage: python -m benchmarks.gpu_carry      (make gpu-carry: fills .gpu-carry/wheels, prints sizes)

The GPU machine has Python 3.12 with torch, transformers, peft, safetensors,
tokenizers, sentence-transformers, pyarrow, numpy, pandas and scikit-learn,
and no network. ``marc_batch`` additionally imports the packages in
:data:`CARRY` on the suite's path (``tests/test_gpu_suite.py`` checks that
the list is exactly that: the suite runs with every other package hidden,
and imports each of these). They travel as wheels for CPython 3.12 on
manylinux x86-64, at the versions this virtualenv runs, in ``.gpu-carry/``
(ignored by git, copied along as a named path). On the GPU machine
:func:`activate` unpacks the ones the machine lacks, or has too old for the
others' requirements, into a temporary directory at the front of
``sys.path``: nothing is installed and pip is not needed. Stdlib only, plus
``packaging`` (a transformers dependency) when present.
"""

import importlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARRY_DIR = ROOT / ".gpu-carry"
LIMIT_MIB = 64
PYTHON = "3.12"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
# Distribution -> who imports it. "typing-extensions" is on the machine (torch needs it) but
# pydantic needs a newer one than torch does: its wheel is used only where the machine's is older.
CARRY = {
    "pydantic": "marc_batch.config (every settings model) and marc_batch.encode.stats",
    "pydantic-core": "pydantic (compiled: the cp312 manylinux wheel)",
    "pydantic-settings": "marc_batch.config.loader",
    "python-dotenv": "pydantic-settings",
    "annotated-types": "pydantic",
    "typing-inspection": "pydantic, pydantic-settings",
    "typing-extensions": "pydantic >= 2.12 needs >= 4.16 (fallback: used only if older there)",
    "rich": "marc_batch.train.cache and .trainer (progress bars)",
}
FALLBACK_ONLY = {"typing-extensions"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_name(path: Path) -> tuple[str, str, str]:
    """(canonical distribution, version, python tag) from a wheel's file name."""
    name, version, python = path.name.split("-")[:3]
    return canonical(name), version, python


def wheels(carry: Path = CARRY_DIR) -> list[Path]:
    return sorted((carry / "wheels").glob("*.whl"))


def build(carry: Path = CARRY_DIR) -> list[Path]:
    """Download the :data:`CARRY` wheels at this interpreter's installed versions."""
    target = carry / "wheels"
    target.mkdir(parents=True, exist_ok=True)
    specs = {name: f"{name}=={importlib.metadata.version(name)}" for name in CARRY}
    for stale in wheels(carry):
        name, version, _ = _wheel_name(stale)
        if specs.get(name) != f"{name}=={version}":
            stale.unlink()
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q"),
            *("--no-deps", "--only-binary=:all:", "--python-version", PYTHON),
            *("--implementation", "cp", "--abi", "cp" + PYTHON.replace(".", "")),
            *platforms,
            *("-d", str(target)),
            *specs.values(),
        ],
        check=True,
    )
    found = {_wheel_name(path)[0] for path in wheels(carry)}
    if found != set(CARRY):
        raise SystemExit(f"gpu-carry: expected wheels for {sorted(CARRY)}, have {sorted(found)}")
    return wheels(carry)


def tree_bytes(carry: Path = CARRY_DIR) -> tuple[int, int]:
    """(bytes of the repository files a device copy takes, bytes of the carry folder)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    files = [ROOT / name.decode() for name in listed if name]
    repo = sum(path.stat().st_size for path in files if path.is_file())
    extra = sum(path.stat().st_size for path in carry.rglob("*") if path.is_file())
    return repo, extra


def _requirements(paths: list[Path]) -> dict[str, list[str]]:
    """Requirement strings on each distribution, from the carried wheels' METADATA."""
    needs: dict[str, list[str]] = {}
    for path in paths:
        with zipfile.ZipFile(path) as archive:
            meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            text = archive.read(meta).decode()
        for line in text.splitlines():
            if line.startswith("Requires-Dist:"):
                requirement = line.split(":", 1)[1].strip()
                name = re.match(r"[A-Za-z0-9._-]+", requirement)
                if name:
                    needs.setdefault(canonical(name.group(0)), []).append(requirement)
    return needs


def _satisfied(installed: str, requirements: list[str]) -> bool:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # no way to compare: what is there has to do
        return True
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            return False
    return True


def activate(carry: Path = CARRY_DIR) -> dict[str, str]:
    """Make the carried wheels importable where needed; returns {distribution: where from}."""
    paths = wheels(carry)
    if not paths:
        return {}
    needs = _requirements(paths)
    tag = "cp" + "".join(map(str, sys.version_info[:2]))
    site = Path(tempfile.mkdtemp(prefix="gpu-carry-"))
    used = {}
    for path in paths:
        name, version, python = _wheel_name(path)
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is not None and _satisfied(installed, needs.get(name, [])):
            used[name] = f"machine {installed}"
            continue
        if python not in ("py3", tag):
            raise SystemExit(f"gpu-carry: {path.name} is for {python}; this is Python {tag}")
        with zipfile.ZipFile(path) as archive:
            archive.extractall(site)
        used[name] = f"carried {version}" + (f" (machine has {installed})" if installed else "")
    if any(text.startswith("carried") for text in used.values()):
        sys.path.insert(0, str(site))
        importlib.invalidate_caches()
    else:
        shutil.rmtree(site, ignore_errors=True)
    return used


def main() -> None:
    paths = build()
    carry = sum(path.stat().st_size for path in paths)
    repo, extra = tree_bytes()
    for path in paths:
        print(f"  {path.stat().st_size / 2**20:6.2f} MiB  {path.name}")
    total = (repo + extra) / 2**20
    print(
        f"gpu-carry: {CARRY_DIR.relative_to(ROOT)} holds {len(paths)} wheels, "
        f"{carry / 2**20:.2f} MiB; whole copied tree (repository files {repo / 2**20:.2f} MiB "
        f"+ carry {extra / 2**20:.2f} MiB) = {total:.2f} MiB of {LIMIT_MIB} MiB"
    )
    (CARRY_DIR / "carry.json").write_text(
        json.dumps(
            {
                "wheels": [path.name for path in paths],
                "wheel_bytes": carry,
                "repository_bytes": repo,
                "tree_mib": round(total, 2),
            },
            indent=2,
        )
        + "\n"
    )
    if total >= LIMIT_MIB:
        raise SystemExit(f"gpu-carry: {total:.1f} MiB does not fit in {LIMIT_MIB} MiB")


if __name__ == "__main__":
    main()
