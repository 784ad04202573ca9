#!/usr/bin/env python3
"""Packs the filter module as OCI image layouts that registries can serve, offline.

    python3 scripts/oci.py [--wasm build/model_router.wasm] [--out build]

writes two layouts (a directory each: oci-layout, index.json, blobs/sha256/...):

  build/oci/         the Wasm artifact ("oci") variant: a config and two layers with the Wasm
                     media types, the runtime config JSON and the raw module. Istio's and Envoy
                     Gateway's image fetchers accept exactly this shape (two layers, one of them
                     application/vnd.module.wasm.content.layer.v1+wasm).
  build/oci-compat/  the "compat" variant: an ordinary image whose single tar+gzip layer holds
                     plugin.wasm, for registries or tools that refuse custom media types.

Both are tagged with the crate version (index.json's org.opencontainers.image.ref.name).
Blobs are byte-for-byte reproducible (fixed timestamps), so the same module gives the same
digests. Pushing is left to standard tools, for example:

    oras cp --from-oci-layout build/oci:0.1.0 registry.example.com/model-router:0.1.0
    skopeo copy oci:build/oci-compat:0.1.0 docker://registry.example.com/model-router:0.1.0-compat
    crane push build/oci-compat registry.example.com/model-router:0.1.0-compat
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
TAR_GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"
# The proxy-wasm ABI the Rust SDK 0.2 exports, and the filter's two roots (src/topology.rs).
ABI_VERSIONS = ["proxy_abi_version_0_2_1"]
ROOT_IDS = ["model_router", "model_router_attempt"]


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Layout:
    """An OCI image layout directory being written."""

    def __init__(self, path: Path):
        if path.exists():
            shutil.rmtree(path)
        (path / "blobs" / "sha256").mkdir(parents=True)
        (path / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
        self.path = path

    def blob(self, media_type: str, data: bytes, annotations: dict | None = None) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (self.path / "blobs" / "sha256" / digest).write_bytes(data)
        descriptor = {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}
        if annotations:
            descriptor["annotations"] = annotations
        return descriptor

    def finish(self, manifest: dict, tag: str) -> dict:
        descriptor = self.blob(MANIFEST, canonical(manifest), {REF_NAME: tag})
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [descriptor]}
        (self.path / "index.json").write_bytes(canonical(index))
        return descriptor


def runtime_config() -> bytes:
    return canonical({"type": "envoy_proxy", "abiVersions": ABI_VERSIONS,
                      "config": {"root_ids": ROOT_IDS}})


def artifact_layout(path: Path, wasm: bytes, tag: str, annotations: dict) -> dict:
    layout = Layout(path)
    config_bytes = runtime_config()
    config = layout.blob(WASM_CONFIG, config_bytes)
    layers = [layout.blob(WASM_CONFIG, config_bytes, {TITLE: "runtime-config.json"}),
              layout.blob(WASM_LAYER, wasm, {TITLE: "plugin.wasm"})]
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers,
                "annotations": annotations}
    return layout.finish(manifest, tag)


def plugin_tar(wasm: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("plugin.wasm", wasm), ("runtime-config.json", runtime_config())):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def compat_layout(path: Path, wasm: bytes, tag: str, annotations: dict) -> dict:
    layout = Layout(path)
    tar = plugin_tar(wasm)
    layer = layout.blob(TAR_GZIP_LAYER, gzip.compress(tar, compresslevel=9, mtime=0))
    config = layout.blob(IMAGE_CONFIG, canonical({
        "architecture": "wasm", "os": "wasip1",
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
        "config": {}}))
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [layer],
                "annotations": {**annotations, "module.wasm.image/variant": "compat"}}
    return layout.finish(manifest, tag)


def crate_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    match = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    return match.group(1) if match else "latest"


def main() -> int:
    parser = argparse.ArgumentParser(description="Pack the .wasm as OCI image layouts.")
    parser.add_argument("--wasm", type=Path, default=ROOT / "build" / "model_router.wasm")
    parser.add_argument("--out", type=Path, default=ROOT / "build",
                        help="writes OUT/oci and OUT/oci-compat")
    parser.add_argument("--tag", default=None, help="default: the crate version")
    args = parser.parse_args()
    if not args.wasm.is_file():
        print(f"{args.wasm} not found: run make wasm first", file=sys.stderr)
        return 1
    wasm = args.wasm.read_bytes()
    if wasm[:4] != b"\0asm":
        print(f"{args.wasm} is not a Wasm module", file=sys.stderr)
        return 1
    tag = args.tag or crate_version()
    annotations = {TITLE: "model-router", "org.opencontainers.image.version": tag,
                   "org.opencontainers.image.description":
                       "OpenAI-compatible model router, a proxy-wasm filter for Envoy"}
    for name, build in (("oci", artifact_layout), ("oci-compat", compat_layout)):
        descriptor = build(args.out / name, wasm, tag, annotations)
        print(f"{args.out / name}: {tag} manifest {descriptor['digest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
