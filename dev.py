#!/usr/bin/env python3
"""Bootstrap and run Amplify with nothing but Python 3.11+.

    python3 dev.py serve [amplify serve options]   run the service on the embedded defaults
    python3 dev.py demo  [amplify demo options]    the whole product on throwaway data
    python3 dev.py test  [pytest options]          run the whole test suite
    python3 dev.py lint                            ruff and mypy
    python3 dev.py amplify ARGS...                 any `amplify` command inside the virtualenv

The first call creates ./.venv and installs the project with its development tools; later calls
reinstall only when pyproject.toml changes.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".amplify-install-stamp"


def _python() -> Path:
    return BIN / ("python.exe" if os.name == "nt" else "python")


def _wanted_stamp() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{digest} {sys.version_info.major}.{sys.version_info.minor}"


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (dev.py may be run by an older python3)
        sys.exit(f"Amplify needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not _python().exists():
        print(f"Creating the virtualenv in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _wanted_stamp():
        return
    print("Installing Amplify and its dependencies (first run only) ...", flush=True)
    pip = [str(_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(_wanted_stamp())


def run(argv: list[str]) -> int:
    """Run a command to its end. Ctrl-C reaches the child too (same process group): wait for
    its clean shutdown (the service commits every waiting click) instead of killing it."""
    process = subprocess.Popen(argv, cwd=ROOT)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


def main() -> int:
    command, *rest = sys.argv[1:] or ["help"]
    if command in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    ensure_environment()
    if command == "serve":
        return run([str(BIN / "amplify"), "serve", *rest])
    if command == "demo":
        return run([str(BIN / "amplify"), "demo", *rest])
    if command == "amplify":
        return run([str(BIN / "amplify"), *rest])
    if command == "test":
        return run([str(_python()), "-m", "pytest", *rest])
    if command == "lint":
        checks = [
            [str(BIN / "ruff"), "check", "app", "tests", "migrations", "bench", "dev.py"],
            [str(BIN / "ruff"), "format", "--check", "app", "tests", "migrations", "bench"],
            [str(BIN / "mypy")],
        ]
        return max(run(check) for check in checks)
    print(f"Unknown command {command!r}.\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
