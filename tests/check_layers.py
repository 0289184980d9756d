#!/usr/bin/env python3
"""Checks that the include graph between targets matches the declared dependencies, and that
the declared dependencies follow the layers (README.md, "Layout"; CMakeLists.txt's header).

  tests/check_layers.py SOURCE_DIR [BUILD_DIR]

It configures SOURCE_DIR into a scratch folder with CMake's file API (codemodel v2) to read
every target's sources and its dependency closure, then for each project file (a target's
sources and the headers that belong to it) checks every `#include "dir/name.h"` of the project:
the header's owner must be the target itself or one it depends on. A header belongs to the
target that compiles the .cc of the same name; a header without one belongs to the one
library target of its folder (or to the owner named in HEADER_OWNERS).

The layers, top-down: cli -> services -> engine, trainer -> search, wire, model -> core. A
target may depend only on targets of its own layer or below, and no service's target depends
on another service's.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

LAYERS = [  # lowest first
    ("core", ["deepsearch_xxhash", "deepsearch_core", "deepsearch_tokenizer", "deepsearch_tasks",
              "deepsearch_sampling", "deepsearch_weights", "deepsearch_proto", "deepsearch_rpc"]),
    ("search, wire, model", ["deepsearch_search", "deepsearch_wire", "deepsearch_model"]),
    ("engine, trainer", ["deepsearch_engine_config", "deepsearch_engine", "deepsearch_trainer_core", "deepsearch_trainer"]),
    ("services", ["deepsearch_actor_options", "deepsearch_actor_service",
                  "deepsearch_learner_state", "deepsearch_learner", "deepsearch_data_parallel",
                  "deepsearch_learner_service", "deepsearch_cache_store",
                  "deepsearch_cache_service"]),
    ("cli", ["deepsearch_run_evaluation", "deepsearch_cli_config", "deepsearch_cli_lib", "deepsearch"]),
]
SERVICES = {"actor": "deepsearch_actor_", "learner": "deepsearch_learner", "cache": "deepsearch_cache_"}
SERVICES_EXTRA = {"deepsearch_data_parallel": "learner"}
# Header-only files in folders that hold more than one target.
HEADER_OWNERS = {
    "trainer/gradient_reducer.h": "deepsearch_trainer_core",
    "learner/learner_impl.h": "deepsearch_learner",
    "trainer/trainer_impl.h": "deepsearch_trainer",
    "engine/engine_internal.h": "deepsearch_engine",
    "actor/actor_internal.h": "deepsearch_actor_service",
    "common/model/torch_pch.h": "deepsearch_model",
    "common/weights/byte_planes.h": "deepsearch_weights",
    "cli/commands.h": "deepsearch_cli_lib",
    "cli/periodic.h": "deepsearch_cli_lib",
    "cli/service_metrics.h": "deepsearch_cli_lib",
    "cli/build_info.h": "deepsearch_cli_lib",
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def codemodel(source_dir):
    """(targets: name -> {"sources": [...], "deps": set(), "kind": str}) of a scratch configure."""
    scratch = tempfile.mkdtemp(prefix="check_layers.")
    query = os.path.join(scratch, ".cmake", "api", "v1", "query")
    os.makedirs(query)
    open(os.path.join(query, "codemodel-v2"), "w").close()
    run = subprocess.run(
        ["cmake", "-S", source_dir, "-B", scratch, "-G", "Ninja", "-DDEEPSEARCH_USE_CCACHE=OFF",
         "-DDEEPSEARCH_USE_PCH=OFF", "-DCMAKE_BUILD_TYPE=Release"],
        capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"check_layers: configuring {source_dir} failed:\n{run.stdout}\n{run.stderr}")
    reply = os.path.join(scratch, ".cmake", "api", "v1", "reply")
    index = json.load(open(sorted(glob.glob(os.path.join(reply, "index-*.json")))[-1]))
    model_file = next(o["jsonFile"] for o in index["objects"] if o["kind"] == "codemodel")
    model = json.load(open(os.path.join(reply, model_file)))
    ids, targets = {}, {}
    for t in model["configurations"][0]["targets"]:
        j = json.load(open(os.path.join(reply, t["jsonFile"])))
        ids[j["id"]] = j["name"]
        targets[j["name"]] = {
            "sources": [s["path"] for s in j.get("sources", [])
                        if not s.get("isGenerated") and not os.path.isabs(s["path"])],
            "dep_ids": [d["id"] for d in j.get("dependencies", [])],
            "kind": j["type"],
        }
    subprocess.run(["rm", "-rf", scratch])
    for t in targets.values():
        t["deps"] = {ids[i] for i in t.pop("dep_ids") if i in ids}
    return targets


def layer_of(name):
    for i, (_, members) in enumerate(LAYERS):
        if name in members:
            return i
    return None


def service_of(name):
    if name in SERVICES_EXTRA:
        return SERVICES_EXTRA[name]
    for service, prefix in SERVICES.items():
        if name.startswith(prefix):
            return service
    return None


def main():
    source_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    targets = codemodel(source_dir)
    errors = []

    # Header ownership.
    owner = dict(HEADER_OWNERS)
    folder_libs = {}
    for name, t in targets.items():
        for src in t["sources"]:
            if src.endswith(".cc"):
                owner.setdefault(src[:-3] + ".h", name)
                if t["kind"] == "STATIC_LIBRARY":
                    folder_libs.setdefault(os.path.dirname(src), set()).add(name)
    project_headers = set()
    for path in glob.glob(os.path.join(source_dir, "**", "*.h"), recursive=True):
        rel = os.path.relpath(path, source_dir)
        if rel.startswith(("build", ".venv", "tests/", "bench/", "third_party/")) or "/." in rel:
            continue
        project_headers.add(rel)
        if rel not in owner:
            libs = folder_libs.get(os.path.dirname(rel), set())
            if len(libs) == 1:
                owner[rel] = next(iter(libs))
            else:
                errors.append(f"{rel}: no target owns this header (name it in HEADER_OWNERS)")

    # Layers and services.
    for name, t in sorted(targets.items()):
        mine = layer_of(name)
        if mine is None:
            continue
        for dep in sorted(t["deps"]):
            theirs = layer_of(dep)
            if theirs is not None and theirs > mine:
                errors.append(f"{name} ({LAYERS[mine][0]}) depends on {dep}, a layer above "
                              f"({LAYERS[theirs][0]})")
            if mine == layer_of("deepsearch_learner") and theirs == mine and \
                    service_of(dep) != service_of(name):
                errors.append(f"{name} ({service_of(name)}) depends on {dep}, another service's "
                              f"target ({service_of(dep)})")
    for name in targets:
        if name.startswith("deepsearch_") and targets[name]["kind"] == "STATIC_LIBRARY" and \
                layer_of(name) is None and not name.startswith("deepsearch_bench"):
            errors.append(f"{name}: a library on no layer (add it to LAYERS)")

    # Includes against declared dependencies.
    checked = 0
    for name, t in sorted(targets.items()):
        files = [s for s in t["sources"] if s.endswith((".cc", ".h"))]
        files += [h for h, o in owner.items() if o == name and h in project_headers]
        allowed = t["deps"] | {name}
        for rel in sorted(set(files)):
            text = open(os.path.join(source_dir, rel), errors="replace").read()
            for inc in INCLUDE.findall(text):
                if inc not in project_headers:
                    continue  # generated, third-party or a test helper
                checked += 1
                if owner.get(inc) not in allowed:
                    errors.append(f"{rel} ({name}) includes {inc} of {owner.get(inc)}, "
                                  f"which {name} does not depend on")
    for e in errors:
        print("check_layers:", e)
    if errors:
        print(f"check_layers: FAILED: {len(errors)} problem(s)")
        return 1
    print(f"check_layers: {len(targets)} targets, {checked} project includes, all on declared "
          f"dependencies; layers hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
