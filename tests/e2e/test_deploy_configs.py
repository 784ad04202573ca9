"""Every Envoy config in the repository is one real Envoy accepts (`envoy --mode validate`,
which also loads the real .wasm and runs its configuration check), the deployment examples
are up to date with the generator, the Istio and Envoy Gateway patches assemble into a valid
Envoy config, and `make oci`'s layouts are consistent."""
from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from harness import ENVOY, ROOT, WASM

DEPLOY = ROOT / "deploy"
SKIP_DIRS = {".git", "target", "build", "node_modules", "__pycache__"}
DEPLOY_WASM = "/etc/model-router/model_router.wasm"
ROUTER = "envoy.filters.http.router"


def repo_files(suffixes: tuple[str, ...]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".venv")
                       and d != ".venv" and not d.endswith("venv")]
        found += [Path(dirpath) / f for f in filenames if f.endswith(suffixes)]
    return sorted(found)


def fill_placeholders(text: str) -> str:
    """Bench templates (bench/overhead/*.yaml) leave their ports as ${NAME_PORT}."""
    names = sorted(set(re.findall(r"\$\{([A-Z_]+_PORT)\}", text)))
    for i, name in enumerate(names):
        text = text.replace(f"${{{name}}}", str(20000 + i))
    return text


def load_docs(path: Path) -> list:
    text = fill_placeholders(path.read_text())
    if path.suffix == ".json":
        return [json.loads(text)]
    return [d for d in yaml.safe_load_all(text) if d is not None]


def is_bootstrap(doc) -> bool:
    return isinstance(doc, dict) and ("static_resources" in doc or "dynamic_resources" in doc)


def host_env_keys(node) -> set[str]:
    keys = set()
    if isinstance(node, dict):
        keys |= set(node.get("host_env_keys", []))
        for child in node.values():
            keys |= host_env_keys(child)
    elif isinstance(node, list):
        for child in node:
            keys |= host_env_keys(child)
    return keys


def runnable_here(text: str) -> str:
    """Points the module paths the examples use at this checkout's build."""
    text = text.replace(DEPLOY_WASM, str(WASM))
    return re.sub(r'(filename: "?)build/model_router\.wasm', rf'\g<1>{WASM}', text)


def envoy_validate(text: str, tmp_path: Path, name: str, env_keys: set[str]) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(runnable_here(text))
    env = {**os.environ, **{k: "validation-only" for k in env_keys}}
    out = subprocess.run([ENVOY, "--mode", "validate", "-c", str(path), "--log-level", "error"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0 and " OK" in out.stdout + out.stderr, \
        f"{name} rejected by envoy --mode validate:\n{out.stdout}\n{out.stderr}"


def holds_bootstrap(path: Path) -> bool:
    try:
        docs = load_docs(path)
    except json.JSONDecodeError:
        return False  # JSON that is not JSON (fuzz inputs) is no Envoy config; bad YAML fails below
    return any(is_bootstrap(d) for d in docs)


BOOTSTRAPS = [p for p in repo_files((".yaml", ".yml", ".json")) if holds_bootstrap(p)]


def test_the_repository_has_the_bootstraps_this_test_is_meant_to_find():
    names = {str(p.relative_to(ROOT)) for p in BOOTSTRAPS}
    assert {"envoy/demo-envoy.yaml", "deploy/gateway/envoy.yaml", "deploy/sidecar/envoy.yaml"} <= names


@pytest.mark.parametrize("path", BOOTSTRAPS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_envoy_bootstrap_in_the_repository_validates(path, tmp_path):
    docs = load_docs(path)
    text = fill_placeholders(path.read_text()) if path.suffix != ".json" else json.dumps(docs[0])
    envoy_validate(text, tmp_path, path.stem, host_env_keys(docs))


def test_deployment_examples_are_up_to_date_with_the_generator():
    out = subprocess.run([sys.executable, str(DEPLOY / "render.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_every_kubernetes_manifest_in_deploy_parses_and_names_its_objects():
    manifests = [p for p in repo_files((".yaml", ".yml")) if DEPLOY in p.parents]
    kinds = []
    for path in manifests:
        for doc in load_docs(path):
            if is_bootstrap(doc):
                continue
            assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), path
            kinds.append(doc["kind"])
    for kind in ("Deployment", "EnvoyFilter", "Gateway", "VirtualService", "EnvoyPatchPolicy",
                 "EnvoyProxy", "HTTPRoute", "ConfigMap"):
        assert kind in kinds, kind


def gateway_bootstrap() -> dict:
    return yaml.safe_load((DEPLOY / "gateway" / "envoy.yaml").read_text())


def assemble(clusters, listener_extra, hcm_extra, downstream, upstream_filters, vhost_extra,
             route, stats_config) -> dict:
    """A bootstrap built only from the fragments another control plane patches in."""
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "assembled", **hcm_extra,
           "route_config": {"name": "assembled", "virtual_hosts": [
               {"name": "assembled", "domains": ["*"], **vhost_extra,
                "routes": [{"match": {"prefix": "/"}, **route}]}]},
           "http_filters": [downstream, {"name": ROUTER, "typed_config": {
               "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
               "upstream_http_filters": upstream_filters}}]}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}},
        "stats_config": stats_config,
        "static_resources": {
            "listeners": [{"name": "assembled", **listener_extra,
                           "address": {"socket_address": {"address": "127.0.0.1", "port_value": 10000}},
                           "filter_chains": [{"filters": [{
                               "name": "envoy.filters.network.http_connection_manager",
                               "typed_config": hcm}]}]}],
            "clusters": clusters,
        },
    }


def by_kind(path: Path) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for doc in load_docs(path):
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def test_istio_envoyfilter_patches_assemble_into_a_config_envoy_accepts(tmp_path):
    kinds = by_kind(DEPLOY / "istio" / "model-router.yaml")
    patches = kinds["EnvoyFilter"][0]["spec"]["configPatches"]
    pick = lambda apply_to, op: [p["patch"]["value"] for p in patches  # noqa: E731
                                 if p["applyTo"] == apply_to and p["patch"]["operation"] == op]
    for p in patches:
        assert p["match"]["context"] == "GATEWAY", p
        assert re.match(p["match"]["proxy"]["proxyVersion"], "1.28.0")
    (router_merge,) = pick("HTTP_FILTER", "MERGE")
    (route,) = pick("HTTP_ROUTE", "MERGE")
    stats = json.loads(kinds["ConfigMap"][0]["data"]["custom_bootstrap.json"])["stats_config"]
    hcm = dict(pick("NETWORK_FILTER", "MERGE")[0]["typed_config"])
    hcm.pop("@type")
    bootstrap = assemble(pick("CLUSTER", "ADD"), pick("LISTENER", "MERGE")[0], hcm,
                         pick("HTTP_FILTER", "INSERT_BEFORE")[0],
                         router_merge["typed_config"]["upstream_http_filters"],
                         pick("VIRTUAL_HOST", "MERGE")[0], route, stats)
    envoy_validate(yaml.safe_dump(bootstrap), tmp_path, "istio-assembled", host_env_keys(bootstrap))

    # The patches carry everything the generated bootstrap has, nothing less.
    generated = gateway_bootstrap()
    assert [c["name"] for c in bootstrap["static_resources"]["clusters"]] == \
        [c["name"] for c in generated["static_resources"]["clusters"]]
    assert stats == generated["stats_config"]
    # The route the HTTP_ROUTE patch matches is the one the VirtualService names.
    route_name = next(p for p in patches if p["applyTo"] == "HTTP_ROUTE")["match"][
        "routeConfiguration"]["vhost"]["route"]["name"]
    assert [h["name"] for h in kinds["VirtualService"][0]["spec"]["http"]] == [route_name]
    assert kinds["VirtualService"][0]["spec"]["http"][0]["retries"] == {"attempts": 0}


@pytest.mark.parametrize("version, matches", [
    ("1.28.0", True), ("1.29.2", True), ("1.31.0-distroless", True), ("1.40.1", True),
    ("1.27.3", False), ("1.2.9", False), ("1.3.0", False),
])
def test_istio_patches_apply_only_to_proxies_new_enough(version, matches):
    patches = by_kind(DEPLOY / "istio" / "model-router.yaml")["EnvoyFilter"][0]["spec"]["configPatches"]
    regexes = {p["match"]["proxy"]["proxyVersion"] for p in patches}
    assert len(regexes) == 1
    assert bool(re.match(regexes.pop(), version)) == matches


def test_envoy_gateway_patches_assemble_into_a_config_envoy_accepts(tmp_path):
    kinds = by_kind(DEPLOY / "envoy-gateway" / "model-router.yaml")
    ops = kinds["EnvoyPatchPolicy"][0]["spec"]["jsonPatches"]
    clusters = [o["operation"]["value"] for o in ops
                if o["type"].endswith("Cluster") and o["operation"]["path"] == ""]
    listener_ops = [o["operation"] for o in ops if o["type"].endswith("Listener")]
    route_ops = [o["operation"] for o in ops if o["type"].endswith("RouteConfiguration")]
    listener_extra = {o["path"].lstrip("/"): o["value"] for o in listener_ops if "jsonPath" not in o}
    hcm_ops = [o for o in listener_ops if "http_connection_manager" in o.get("jsonPath", "")]
    hcm = {o["path"].lstrip("/"): o["value"] for o in hcm_ops if o["path"] != "/http_filters/0"}
    (downstream,) = [o["value"] for o in hcm_ops if o["path"] == "/http_filters/0"]
    (upstream,) = [o["value"] for o in listener_ops if o["path"] == "/upstream_http_filters"]
    vhost = {o["path"].lstrip("/"): o["value"] for o in route_ops if "virtual_hosts" in o["jsonPath"]}
    route: dict = {"route": {}}
    for o in route_ops:
        if "routes" not in o["jsonPath"] or o["op"] != "add":
            continue
        if o["path"].startswith("/route/"):
            route["route"][o["path"][len("/route/"):]] = o["value"]
        else:
            route[o["path"].lstrip("/")] = o["value"]
    # cluster and cluster_header are one oneof: the backend's cluster has to go first.
    assert any(o["op"] == "remove" and o["path"] == "/route/cluster" for o in route_ops)
    stats = copy.deepcopy(gateway_bootstrap()["stats_config"])
    stats["stats_tags"] = [p["value"] for p in kinds["EnvoyProxy"][0]["spec"]["bootstrap"]["jsonPatches"]]
    bootstrap = assemble(clusters, listener_extra, hcm, downstream, upstream, vhost, route, stats)
    envoy_validate(yaml.safe_dump(bootstrap), tmp_path, "eg-assembled", host_env_keys(bootstrap))
    generated = gateway_bootstrap()
    assert stats == generated["stats_config"]
    assert [c["name"] for c in clusters] == [c["name"] for c in generated["static_resources"]["clusters"]]
    # The API keys the filter reads are in the proxy container's environment.
    env = kinds["EnvoyProxy"][0]["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"]
    assert {e["name"] for e in env} == host_env_keys(downstream)


# ---------------------------------------------------------------------------------------------
# make oci

def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_blob(layout: Path, descriptor: dict) -> bytes:
    algorithm, hexdigest = descriptor["digest"].split(":")
    data = (layout / "blobs" / algorithm / hexdigest).read_bytes()
    assert sha256(data) == descriptor["digest"], descriptor
    assert len(data) == descriptor["size"], descriptor
    return data


@pytest.fixture(scope="module")
def oci_layouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("oci")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "oci.py"), "--wasm", str(WASM),
                          "--out", str(out), "--tag", "test"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return out


def manifest_of(layout: Path) -> dict:
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = index["manifests"]
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == "test"
    assert descriptor["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    return json.loads(read_blob(layout, descriptor))


def test_oci_artifact_layout_has_consistent_digests_and_the_wasm_media_types(oci_layouts):
    layout = oci_layouts / "oci"
    manifest = manifest_of(layout)
    assert manifest["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    runtime = json.loads(read_blob(layout, manifest["config"]))
    assert runtime["type"] == "envoy_proxy"
    assert set(runtime["config"]["root_ids"]) == {"model_router", "model_router_attempt"}
    # What Istio's and Envoy Gateway's fetchers require of this variant: exactly two layers,
    # one of them the raw module.
    assert len(manifest["layers"]) == 2
    wasm_layers = [d for d in manifest["layers"]
                   if d["mediaType"] == "application/vnd.module.wasm.content.layer.v1+wasm"]
    assert len(wasm_layers) == 1
    assert read_blob(layout, wasm_layers[0]) == WASM.read_bytes()
    for descriptor in manifest["layers"]:
        read_blob(layout, descriptor)
    blobs = {p.name for p in (layout / "blobs" / "sha256").iterdir()}
    referenced = {d["digest"].split(":")[1] for d in [manifest["config"], *manifest["layers"]]}
    index_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    assert blobs == referenced | {index_digest.split(":")[1]}, "unreferenced or missing blobs"


def test_oci_compat_layout_is_an_image_whose_layer_holds_plugin_wasm(oci_layouts):
    layout = oci_layouts / "oci-compat"
    manifest = manifest_of(layout)
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    tar_bytes = gzip.decompress(read_blob(layout, layer))
    config = json.loads(read_blob(layout, manifest["config"]))
    assert config["rootfs"]["diff_ids"] == [sha256(tar_bytes)]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        member = tar.extractfile("plugin.wasm")
        assert member is not None and member.read() == WASM.read_bytes()


def test_oci_layouts_are_reproducible(oci_layouts, tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "oci.py"), "--wasm", str(WASM),
                          "--out", str(tmp_path), "--tag", "test"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for variant in ("oci", "oci-compat"):
        assert (tmp_path / variant / "index.json").read_bytes() == \
            (oci_layouts / variant / "index.json").read_bytes(), variant
