#!/usr/bin/env python3
"""Offline validation of the Kubernetes manifests (deploy/k8s).

Renders each kustomization with `kubectl kustomize`, checks every object against its kind's
OpenAPI schema (kubernetes-validate, strict: unknown fields are errors too), and checks that
the objects agree with the deepsearch binary itself: every config the pods mount is valid for
`deepsearch config show`, every flag exists in the subcommand's --help, and the ports,
probes, volume mounts, Service names and the learner's rendezvous follow from the effective
configuration (`deepsearch config show`).

    .venv/bin/python deploy/check/check_manifests.py --deepsearch build/cli/deepsearch DIR...

Exit 0 when every kustomization passes; 1 with one line per problem otherwise; 2 on usage.
"""

import argparse
import json
import os
import posixpath
import re
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml

# The Kubernetes release whose schemas the objects must satisfy: the oldest the deployment
# supports (docs/DEPLOY.md).
KUBERNETES_VERSION = "1.30"
CONFIG_MOUNT_FILE = "deepsearch.yaml"
# Stand-ins for the downward-API variables the manifests use in args.
SAMPLE_ENV = {"POD_INDEX": "0", "POD_NAME": "deepsearch-actor-0"}
# Subcommands that take a further subcommand word.
NESTED = {"model", "data", "config"}


def run(argv):
    """(ok, output) of a command; the output is stdout, or stdout + stderr on failure."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as e:
        return False, str(e)
    if done.returncode == 0:
        return True, done.stdout
    return False, (done.stdout + done.stderr).strip() or f"exit {done.returncode}"


def split_address(address):
    host, _, port = str(address).rpartition(":")
    try:
        return host, int(port)
    except ValueError:
        return host, None


def arg_after(argv, flag):
    """The argument after the first `flag` in argv, or None."""
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def under(file, directory):
    """Whether `file` lies under `directory` (both absolute paths)."""
    return file == directory or file.startswith(directory if directory.endswith("/") else directory + "/")


def schema_problems(obj):
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return []
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    except kubernetes_validate.ValidationError as e:
        where = "/".join(str(p) for p in e.path)
        return [f"{where or '(object)'}: {e.message}"]
    except kubernetes_validate.InvalidSchemaError as e:
        return [f"invalid schema: {e}"]


class Checker:
    def __init__(self, deepsearch, scratch):
        self.deepsearch = deepsearch
        self.scratch = scratch
        self.help_cache = {}
        self.config_cache = {}

    def known_flags(self, subcommand):
        """The flags of a subcommand, from its --help (cached); None if it is no subcommand."""
        key = " ".join(subcommand)
        if key not in self.help_cache:
            ok, out = run([self.deepsearch, *subcommand, "--help"])
            self.help_cache[key] = set(re.findall(r"--[a-z][a-z0-9-]*", out)) if ok else None
        return self.help_cache[key]

    def effective_config(self, text, overrides):
        """The effective configuration of a config file with overrides, or an error text."""
        key = json.dumps([text, overrides])
        if key not in self.config_cache:
            path = os.path.join(self.scratch, f"config-{len(self.config_cache)}.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            argv = [self.deepsearch, "config", "show", path]
            for o in overrides:
                argv += ["--set", o]
            ok, out = run(argv)
            self.config_cache[key] = yaml.safe_load(out) if ok else {"error": out}
        return self.config_cache[key]

    def check(self, directory):
        """(problems, images, Secrets the render expects to exist) of one kustomization."""
        problems = []
        images = set()
        external_secrets = set()

        def fail(where, message):
            problems.append(f"{directory}: {where}: {message}")

        ok, rendered = run(["kubectl", "kustomize", directory])
        if not ok:
            fail("kubectl kustomize", rendered)
            return problems, images, external_secrets
        objects = [o for o in yaml.safe_load_all(rendered) if o]

        def name(o):
            return f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}"

        for o in objects:
            for m in schema_problems(o):
                fail(name(o), f"schema: {m}")

        def by_kind(kind):
            return [o for o in objects if o.get("kind") == kind]

        services = by_kind("Service")
        config_maps = by_kind("ConfigMap")
        secrets = by_kind("Secret")
        workloads = [o for o in objects if o.get("kind") in ("StatefulSet", "Deployment", "Job")]
        secret_names = {s["metadata"]["name"] for s in secrets}

        def routes_to(svc, labels):
            # The StatefulSet controller adds statefulset.kubernetes.io/pod-name to each pod
            # itself (the learner's Service uses it to pick rank 0): the template cannot carry it.
            return all(labels.get(k) == v or k == "statefulset.kubernetes.io/pod-name"
                       for k, v in (svc["spec"].get("selector") or {}).items())

        def check_address(where, address, component, port_name):
            """That `address` reaches the container port `port_name` of the `component`."""
            host, port = split_address(address)
            target = next((w for w in workloads
                           if w["spec"]["template"]["metadata"].get("labels", {})
                           .get("app.kubernetes.io/component") == component), None)
            if target is None:
                return fail(where, f"{address}: no {component} workload in the render")
            container_port = next((p for c in target["spec"]["template"]["spec"]["containers"]
                                   for p in c.get("ports") or [] if p.get("name") == port_name), None)
            svc_name = host.split(".")[0]
            svc = next((s for s in services if s["metadata"]["name"] == svc_name), None)
            if svc is None:
                return fail(where, f"{address}: no Service {svc_name}")
            if not routes_to(svc, target["spec"]["template"]["metadata"].get("labels", {})):
                fail(where, f"{address}: Service {svc_name} does not select the {component} pods")
            sp = next((p for p in svc["spec"].get("ports") or [] if p.get("port") == port), None)
            if sp is None:
                return fail(where, f"{address}: Service {svc_name} has no port {port}")
            target_port = sp.get("targetPort", sp.get("port"))
            if not container_port or target_port not in (container_port.get("name"),
                                                         container_port.get("containerPort")):
                fail(where, f"{address}: Service {svc_name} port {port} does not reach the "
                            f"{component}'s {port_name} port")

        model_inits = []
        for w in workloads:
            pod = w["spec"]["template"]["spec"]
            labels = w["spec"]["template"]["metadata"].get("labels", {})
            component = labels.get("app.kubernetes.io/component")
            if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
                fail(name(w), "pods must set runAsNonRoot")
            if w["kind"] == "StatefulSet":
                headless = next((s for s in services
                                 if s["metadata"]["name"] == w["spec"].get("serviceName")), None)
                if headless is None or headless["spec"].get("clusterIP") != "None":
                    fail(name(w), f"serviceName {w['spec'].get('serviceName')} is not a headless "
                                  "Service of the render")
            volumes = {v["name"]: v for v in pod.get("volumes") or []}
            for t in w["spec"].get("volumeClaimTemplates") or []:
                volumes[t["metadata"]["name"]] = {"pvc": True}
            for v in volumes.values():
                ref = (v.get("configMap") or {}).get("name")
                if ref and not any(c["metadata"]["name"] == ref for c in config_maps):
                    fail(name(w), f"volume {v.get('name')}: no ConfigMap {ref} in the render")
                secret = v.get("secret")
                if secret and not secret.get("optional") and secret["secretName"] not in secret_names:
                    external_secrets.add(secret["secretName"])
            for c in (pod.get("initContainers") or []) + pod["containers"]:
                where = f"{name(w)} container {c['name']}"
                images.add(c.get("image"))
                mounts = []
                for m in c.get("volumeMounts") or []:
                    if m["name"] not in volumes:
                        fail(where, f"volumeMount {m['name']} has no volume")
                    mounts.append({**m, "volume": volumes.get(m["name"])})

                def mount_of(file):
                    found = [m for m in mounts if under(file, m["mountPath"])]
                    return max(found, key=lambda m: len(m["mountPath"])) if found else None

                def need_mount(what, file, writable=False, secret=False):
                    m = mount_of(file)
                    if m is None:
                        return fail(where, f"{what} {file} is not under a volume mount")
                    if writable and m.get("readOnly"):
                        fail(where, f"{what} {file} is on a read-only mount")
                    volume_secret = (m.get("volume") or {}).get("secret")
                    if secret and not volume_secret:
                        return fail(where, f"{what} {file} is not on a Secret volume")
                    if secret and volume_secret["secretName"] not in secret_names:
                        external_secrets.add(volume_secret["secretName"])

                # args: substitute the env, check the flags against the subcommand's --help.
                env = {e["name"]: e for e in c.get("env") or []}

                def substitute(match):
                    var = match.group(1)
                    if var not in env:
                        fail(where, f"args use $({var}), which the container's env does not define")
                    return SAMPLE_ENV.get(var, "x")

                args = [re.sub(r"\$\(([A-Z_]+)\)", substitute, str(a)) for a in c.get("args") or []]
                if c.get("command"):
                    fail(where, "the image's entrypoint is deepsearch: set args, not command")
                sub = args[:2] if args and args[0] in NESTED else args[:1]
                flags = self.known_flags(sub)
                if flags is None:
                    fail(where, f"deepsearch {' '.join(sub)}: not a subcommand of the binary")
                    continue
                for a in args:
                    flag = a.split("=")[0] if a.startswith("--") else None
                    if flag and flag not in flags:
                        fail(where, f"deepsearch {' '.join(sub)} has no flag {flag}")

                def option(flag):
                    return arg_after(args, flag)

                out = option("--out")
                if out:
                    need_mount("--out", out, writable=True)
                if " ".join(sub) == "model init":
                    model_inits.append((where, option("--preset") or "tiny", option("--seed") or "0"))

                # Commands that read the config file: its effective values must fit the pod.
                config_path = option("--config")
                if not config_path:
                    continue
                cm = mount_of(config_path)
                cm_name = ((cm or {}).get("volume") or {}).get("configMap", {}).get("name")
                cm_obj = next((x for x in config_maps if x["metadata"]["name"] == cm_name), None)
                if (cm_obj is None or posixpath.relpath(config_path, cm["mountPath"]) != CONFIG_MOUNT_FILE
                        or CONFIG_MOUNT_FILE not in (cm_obj.get("data") or {})):
                    fail(where, f"--config {config_path} is not {CONFIG_MOUNT_FILE} of a mounted ConfigMap")
                    continue
                overrides = [a for i, a in enumerate(args) if i > 0 and args[i - 1] == "--set"]
                config = self.effective_config(cm_obj["data"][CONFIG_MOUNT_FILE], overrides)
                if "error" in config:
                    fail(where, f"deepsearch config show: {config['error']}")
                    continue
                tls = config["rpc"]["tls"]
                if tls["enabled"]:
                    for k in ("cert_file", "key_file", "ca_file"):
                        if tls.get(k):
                            need_mount(f"rpc.tls.{k}", tls[k], secret=True)
                if config["rpc"]["auth"].get("token_file"):
                    need_mount("rpc.auth.token_file", config["rpc"]["auth"]["token_file"], secret=True)

                ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
                if len(ports) != len(c.get("ports") or []):
                    fail(where, "two container ports share a name")

                def expect_port(port_name, address, key):
                    _, port = split_address(address)
                    if ports.get(port_name) != port:
                        fail(where, f"{key} {address}: the container port named {port_name} is "
                                    f"{ports.get(port_name, 'missing')}, not {port}")

                probes = [p for p in (c.get("startupProbe"), c.get("readinessProbe"),
                                      c.get("livenessProbe")) if p]

                def check_probes(grpc_port):
                    if len(probes) < 2:
                        fail(where, "needs readiness and liveness probes")
                    for p in probes:
                        if "exec" in p:
                            cmd = p["exec"]["command"]
                            if cmd[:2] != ["deepsearch", "health"]:
                                fail(where, f"exec probe {' '.join(cmd)} is not deepsearch health")
                            if "--config" in cmd and cmd[cmd.index("--config") + 1] != config_path:
                                fail(where, f"probe reads {cmd[cmd.index('--config') + 1]}, the "
                                            f"container {config_path}")
                            host, port = split_address(cmd[-1])
                            if grpc_port is None or port != grpc_port:
                                fail(where, f"probe asks {cmd[-1]}, but the server listens on port {grpc_port}")
                            if tls["enabled"] and host != "localhost":
                                fail(where, "with TLS the probe must dial localhost (the certificate's "
                                            f"name), not {cmd[-1]}")
                        elif "httpGet" in p:
                            if (p["httpGet"].get("path") != "/healthz" or p["httpGet"].get("port") != "metrics"
                                    or not config["metrics"].get("listen_address")):
                                fail(where, "HTTP probes ask /healthz on the metrics port, with "
                                            "metrics.listen_address set")
                        elif "grpc" in p:
                            if tls["enabled"]:
                                fail(where, "Kubernetes' gRPC probes cannot speak TLS; use deepsearch health")
                            if p["grpc"].get("port") != grpc_port:
                                fail(where, f"gRPC probe on {p['grpc'].get('port')}, server on {grpc_port}")

                command = sub[0]
                if command in ("learner", "cache", "actor") and config["metrics"].get("listen_address"):
                    expect_port("metrics", config["metrics"]["listen_address"], "metrics.listen_address")
                if command == "learner":
                    learner = config["learner"]
                    expect_port("grpc", learner["listen_address"], "learner.listen_address")
                    check_probes(split_address(learner["listen_address"])[1])
                    need_mount("learner.state_dir", learner["state_dir"], writable=True)
                    need_mount("learner.model", learner["model"])
                    made = any(arg_after(i.get("args") or [], "--out") == learner["model"]
                               for i in pod.get("initContainers") or [])
                    if not made:
                        fail(where, f"learner.model {learner['model']} is written by no init container")
                    if learner.get("cache_address"):
                        check_address(f"{where} learner.cache_address", learner["cache_address"], "cache", "grpc")
                    dp = learner["data_parallel"]
                    replicas = w["spec"].get("replicas", 1)
                    if dp["world_size"] != replicas:
                        fail(where, f"learner.data_parallel.world_size {dp['world_size']} != the "
                                    f"StatefulSet's replicas {replicas}")
                    if dp["world_size"] > 1:
                        host, _ = split_address(dp["master"])
                        stable = f"{w['metadata']['name']}-0.{w['spec'].get('serviceName')}"
                        if host != stable:
                            fail(where, f"learner.data_parallel.master {dp['master']} is not rank 0's "
                                        f"stable name {stable}")
                        expect_port("c10d", dp["master"], "learner.data_parallel.master")
                        headless = next((s for s in services
                                         if s["metadata"]["name"] == w["spec"].get("serviceName")), None)
                        if headless and not headless["spec"].get("publishNotReadyAddresses"):
                            fail(where, f"the rendezvous Service {headless['metadata']['name']} must "
                                        "publish not-ready addresses")
                        if w["spec"].get("podManagementPolicy") != "Parallel":
                            fail(where, "ranks must start in parallel (podManagementPolicy: Parallel): "
                                        "rank 0 waits for the others")
                elif command == "cache":
                    expect_port("grpc", config["cache"]["listen_address"], "cache.listen_address")
                    check_probes(split_address(config["cache"]["listen_address"])[1])
                    need_mount("cache.store_dir", config["cache"]["store_dir"], writable=True)
                elif command == "actor":
                    actor = config["actor"]
                    check_probes(None)
                    need_mount("actor.model", actor["model"])
                    check_address(f"{where} actor.learner_address", actor["learner_address"], "learner", "grpc")
                    if actor.get("cache_address"):
                        check_address(f"{where} actor.cache_address", actor["cache_address"], "cache", "grpc")
                elif command == "submit":
                    check_address(f"{where} --learner", option("--learner"), "learner", "grpc")
                    problems_file = option("--problems")
                    need_mount("--problems", problems_file)
                    if not any(problems_file in (i.get("args") or []) for i in pod.get("initContainers") or []):
                        fail(where, f"--problems {problems_file} is written by no init container")

        # One image for every container; the learner's and the actors' models of one architecture.
        if len(images) != 1:
            fail("images", f"expected one image, found {', '.join(sorted(map(str, images)))}")
        if len({(preset, seed) for _, preset, seed in model_inits}) > 1:
            fail("model init", "the learner's and the actors' models differ: " +
                 "; ".join(f"{where}: {preset}/{seed}" for where, preset, seed in model_inits))
        return problems, images, external_secrets


def main():
    parser = argparse.ArgumentParser(description="Offline validation of deploy/k8s kustomizations.")
    parser.add_argument("--deepsearch", required=True, help="the deepsearch binary")
    parser.add_argument("dirs", nargs="+", metavar="KUSTOMIZATION_DIR")
    args = parser.parse_args()
    ok, out = run([args.deepsearch, "version"])
    if not ok:
        parser.error(f"{args.deepsearch} does not run: {out}")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="deepsearch-manifests-") as scratch:
        checker = Checker(args.deepsearch, scratch)
        for directory in args.dirs:
            problems, images, external = checker.check(directory)
            for p in problems:
                print(p, file=sys.stderr)
            failed += len(problems)
            extra = f"; Secrets the operator provides: {', '.join(sorted(external))}" if external else ""
            verdict = "OK" if not problems else f"{len(problems)} problem(s)"
            print(f"{directory}: {verdict} (image {', '.join(sorted(map(str, images)))}{extra})")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
