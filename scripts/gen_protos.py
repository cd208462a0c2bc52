"""Regenerate the protobuf code in ``src/fishjam/_proto`` from ``protos/``.

The generated modules live inside the ``fishjam`` SDK package and are shared with the
server (``shoal.protocol.pb`` re-exports them), so both sides always speak one schema.
protoc writes imports as ``from fishjam.notifications import ...``; those are rewritten
to ``fishjam._proto.notifications`` so they do not collide with the SDK's own modules.

Usage: ``python scripts/gen_protos.py`` to regenerate, ``--check`` to verify that the
committed code is up to date (exit 1 if not).
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
TARGET = ROOT / "src" / "fishjam" / "_proto"
IMPORT_RE = re.compile(r"^from fishjam(\.[\w.]+)? import ", re.MULTILINE)


def generate(out: Path) -> None:
    """Run protoc for every .proto file and post-process the output into ``out``."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as raw:
        cmd = [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
            f"--python_out={raw}", f"--pyi_out={raw}", *protos,
        ]
        subprocess.run(cmd, check=True)
        generated = Path(raw) / "fishjam"
        for path in sorted(generated.rglob("*")):
            if path.is_dir():
                continue
            dest = out / path.relative_to(generated)
            dest.parent.mkdir(parents=True, exist_ok=True)
            text = IMPORT_RE.sub(lambda m: f"from fishjam._proto{m.group(1) or ''} import ", path.read_text())
            dest.write_text(text)
    for directory in [out, *[d for d in out.rglob("*") if d.is_dir()]]:
        init = directory / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated protobuf code; regenerate with scripts/gen_protos.py."""\n')


def same_tree(a: Path, b: Path) -> bool:
    """True when both trees hold the same files with the same bytes (caches ignored)."""
    def files(root: Path) -> set[Path]:
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    fa, fb = files(a), files(b)
    return fa == fb and all(filecmp.cmp(a / f, b / f, shallow=False) for f in fa)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "_proto"
        generate(out)
        if args.check:
            if not same_tree(out, TARGET):
                print("generated protobuf code is stale: run python scripts/gen_protos.py", file=sys.stderr)
                return 1
            print("generated protobuf code is up to date")
            return 0
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(out, TARGET)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
