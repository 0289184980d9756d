#!/usr/bin/env python3
"""docs/DEPLOY.md's commands as written, against real services with TLS and a bearer token.

The base overlay (deploy/k8s/base) runs every process with TLS and the token of the Secret
deepsearch-auth. This test makes the certificates and the token with the openssl commands of
DEPLOY.md's "TLS and tokens", lays them out where the Secrets are mounted (under a scratch
root instead of /), starts the cache service and the learner with the base overlay's
deepsearch.yaml on localhost (the certificate's name for the probes), then runs, each as the
docs and manifests write it:
  * the learner's and the cache's exec probes (learner.yaml, cache.yaml): `deepsearch health`;
  * the submit Job's container (submit-job.yaml) with the problems its init container writes;
    run twice: its fixed --request-id must find the same job;
  * `kubectl exec deepsearch-learner-0 -- deepsearch status ...` (DEPLOY.md, without kubectl);
  * `deepsearch watch` of the submitted job, for a few seconds (the stream carries the token);
and checks that the same calls without the token are refused with a message naming it, and
that the token also works from the environment variable.

  tests/deploy/deploy_commands_test.py build/cli/deepsearch
"""
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def fail(message):
    print(f"deploy_commands_test: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh_block(markdown, heading):
    """The first ```sh block after `heading`."""
    at = markdown.index(heading)
    match = re.search(r"```sh\n(.*?)```", markdown[at:], re.S)
    return match.group(1)


def manifest_objects(name):
    with open(os.path.join(ROOT, "deploy/k8s/base", name)) as f:
        return [o for o in yaml.safe_load_all(f) if o]


def containers(obj, init=False):
    spec = obj["spec"]["template"]["spec"]
    return spec.get("initContainers" if init else "containers", [])


def main():
    deepsearch = os.path.abspath(sys.argv[1])
    scratch = tempfile.mkdtemp(prefix="deepsearch-deploy-commands.")
    etc = os.path.join(scratch, "etc/deepsearch")
    var = os.path.join(scratch, "var/lib/deepsearch")
    learner_port, cache_port = free_port(), free_port()
    # What the cluster's names and paths become here.
    mapping = [
        ("/etc/deepsearch", etc),
        ("/var/lib/deepsearch", var),
        ("deepsearch-learner:50051", f"localhost:{learner_port}"),
        ("localhost:50051", f"localhost:{learner_port}"),
        ("deepsearch-cache:50052", f"localhost:{cache_port}"),
        ("localhost:50052", f"localhost:{cache_port}"),
    ]

    def local(text):
        for cluster, here in mapping:
            text = text.replace(cluster, here)
        return text

    def run(argv, env=None, timeout=120, check=True):
        argv = [deepsearch if a == "deepsearch" else local(a) for a in argv]
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            fail(f"{shlex.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    # The certificates and the token, with DEPLOY.md's commands (kubectl's Secrets become
    # the files they mount).
    docs = open(os.path.join(ROOT, "docs/DEPLOY.md")).read()
    block = sh_block(docs, "## TLS and tokens")
    tls_dir, auth_dir = os.path.join(etc, "tls"), os.path.join(etc, "auth")
    for d in (tls_dir, auth_dir, os.path.join(etc, "config"), var):
        os.makedirs(d, exist_ok=True)
    commands = [line for line in block.splitlines() if line.startswith(("openssl ", "printf "))]
    if len(commands) < 4:
        fail(f"DEPLOY.md's TLS block has {len(commands)} openssl/printf commands:\n{block}")
    for line in commands:
        r = subprocess.run(["bash", "-c", line], cwd=tls_dir, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"DEPLOY.md: `{line}` exited {r.returncode}: {r.stderr}")
    token_command = re.search(r'--from-literal=token="\$\((.*?)\)"', block)
    if token_command is None:
        fail("DEPLOY.md's TLS block makes no token Secret")
    token = subprocess.run(["bash", "-c", token_command.group(1)], capture_output=True,
                           text=True, check=True).stdout.strip()
    with open(os.path.join(auth_dir, "token"), "w") as f:
        f.write(token + "\n")
    for f in ("tls.crt", "tls.key", "ca.crt"):
        if not os.path.exists(os.path.join(tls_dir, f)):
            fail(f"DEPLOY.md's commands made no {f}")

    # The base overlay's configuration, its paths moved under the scratch root.
    config = os.path.join(etc, "config/deepsearch.yaml")
    with open(os.path.join(ROOT, "deploy/k8s/base/deepsearch.yaml")) as f:
        text = local(f.read())
    with open(config, "w") as f:
        f.write(text)

    run(["deepsearch", "model", "init", "--preset", "tiny", "--out", os.path.join(scratch, "model")])
    logs = {}
    services = []

    def start(name, argv):
        logs[name] = os.path.join(scratch, f"{name}.log")
        out = open(logs[name], "w")
        services.append(subprocess.Popen([deepsearch] + argv, stdout=out, stderr=subprocess.STDOUT))

    try:
        start("cache", ["cache", "--config", config, "--listen", f"localhost:{cache_port}",
                        "--set", f"metrics.listen_address=127.0.0.1:{free_port()}"])
        start("learner", ["learner", "--config", config, "--listen", f"localhost:{learner_port}",
                          "--cache", f"localhost:{cache_port}",
                          "--model", os.path.join(scratch, "model"),
                          "--set", f"metrics.listen_address=127.0.0.1:{free_port()}"])

        # The exec probes, as the StatefulSets write them; the startup probe is retried.
        probes = {}
        for name in ("learner.yaml", "cache.yaml"):
            for obj in manifest_objects(name):
                if obj.get("kind") != "StatefulSet":
                    continue
                for c in containers(obj):
                    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                        if probe in c:
                            probes[f"{name} {probe}"] = c[probe]["exec"]["command"]
        if len(probes) < 4:
            fail(f"expected the learner's and the cache's probes, found {sorted(probes)}")
        deadline = time.time() + 120
        for what, command in sorted(probes.items()):
            while True:
                r = run(command, check=False)
                if r.returncode == 0 and "SERVING" in r.stdout:
                    break
                if time.time() > deadline or any(s.poll() is not None for s in services):
                    fail(f"{what} `{shlex.join(command)}` does not pass: {r.stderr}\n"
                         + "".join(open(p).read()[-3000:] for p in logs.values()))
                time.sleep(0.5)

        # The submit Job: its init container's problem set, then its container, twice.
        job = next(o for o in manifest_objects("submit-job.yaml") if o.get("kind") == "Job")
        init = containers(job, init=True)[0]["args"]
        submit = containers(job)[0]["args"]
        for c in containers(job, init=True) + containers(job):  # the Job's volumes
            for mount in c.get("volumeMounts", []):
                os.makedirs(local(mount["mountPath"]), exist_ok=True)
        run(["deepsearch"] + init)
        first = run(["deepsearch"] + submit).stdout.strip()
        again = run(["deepsearch"] + submit).stdout.strip()
        if not re.fullmatch(r"job-\d+", first) or first != again:
            fail(f"the submit Job printed {first!r}, then {again!r} (the same job expected)")

        # `kubectl exec deepsearch-learner-0 -- deepsearch status ...` from "Deploying locally".
        status_line = re.search(r"^\s*(deepsearch status .*)$", docs, re.M)
        if status_line is None:
            fail("DEPLOY.md has no `deepsearch status` command")
        status = run(shlex.split(status_line.group(1))).stdout
        if first not in status or "countdown-n3" not in status:
            fail(f"`{status_line.group(1)}` does not list job {first}:\n{status}")
        one = run(shlex.split(status_line.group(1)) + [first, "--json"]).stdout
        if f'"job_id":"{first}"' not in one.replace(" ", ""):
            fail(f"status of {first} as JSON:\n{one}")

        # watch: a stream with the token; the job goes on (no actor), so it is cut after 3 s.
        try:
            watch = subprocess.run(
                [deepsearch, "watch", "--config", config, "--learner", f"localhost:{learner_port}",
                 first], capture_output=True, text=True, timeout=3)
            fail(f"watch ended before the job did: {watch.returncode} {watch.stderr}")
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            if first not in out:
                fail(f"watch printed no progress of {first}: {out!r}")

        # Without the token: refused, naming what is missing; from the environment: accepted.
        no_token = ["--set", "rpc.auth.token_file=", "--set", "rpc.auth.token_env=DEEPSEARCH_TEST_NO_TOKEN"]
        r = run(shlex.split(status_line.group(1)) + no_token + ["--connect-timeout", "0"], check=False)
        if r.returncode == 0 or "authorization: Bearer" not in r.stderr:
            fail(f"status without the token: exit {r.returncode}: {r.stderr}")
        env = dict(os.environ, DEEPSEARCH_AUTH_TOKEN=token)
        r = run(shlex.split(status_line.group(1)) + ["--set", "rpc.auth.token_file="], env=env)
        if first not in r.stdout:
            fail(f"status with the token from DEEPSEARCH_AUTH_TOKEN:\n{r.stdout}{r.stderr}")
        for s in services:
            if s.poll() is not None:
                fail(f"a service exited: {s.args}\n" + open(logs["learner"]).read()[-3000:])
    finally:
        for s in services:
            s.terminate()
        for s in services:
            try:
                s.wait(timeout=30)
            except subprocess.TimeoutExpired:
                s.kill()
    subprocess.run(["rm", "-rf", scratch])
    print(f"deploy_commands_test: OK ({len(probes)} probes, the submit Job twice, status, watch, "
          "token refusals)")


if __name__ == "__main__":
    main()
