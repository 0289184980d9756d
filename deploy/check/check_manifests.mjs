// Offline validation of the Kubernetes manifests (deploy/k8s): renders each kustomization
// with `kubectl kustomize`, checks every object against its kind's OpenAPI schema
// (kubernetes-models), and checks that the objects agree with the deepsearch binary itself:
// every config the pods mount is valid for `deepsearch config show`, every flag exists in the
// subcommand's --help, and the ports, probes, volume mounts, Service names and the learner's
// rendezvous follow from the effective configuration (`deepsearch config show`).
//
//   node deploy/check/check_manifests.mjs --deepsearch build/cli/deepsearch DIR...
//
// Exit 0 when every kustomization passes; 1 with one line per problem otherwise; 2 on usage.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import yaml from "js-yaml";

const CONFIG_MOUNT_FILE = "deepsearch.yaml";
// Stand-ins for the downward-API variables the manifests use in args.
const SAMPLE_ENV = { POD_INDEX: "0", POD_NAME: "deepsearch-actor-0" };

function usage(message) {
  console.error(`check_manifests: ${message}`);
  console.error("usage: node check_manifests.mjs --deepsearch BINARY KUSTOMIZATION_DIR...");
  process.exit(2);
}

const argv = process.argv.slice(2);
const binIndex = argv.indexOf("--deepsearch");
if (binIndex < 0 || binIndex + 1 >= argv.length) usage("--deepsearch BINARY is required");
const deepsearch = argv[binIndex + 1];
const dirs = argv.filter((_, i) => i !== binIndex && i !== binIndex + 1);
if (dirs.length === 0) usage("no kustomization directory given");

const scratch = mkdtempSync(path.join(tmpdir(), "deepsearch-manifests-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));

function run(file, args) {
  try {
    return { ok: true, out: execFileSync(file, args, { encoding: "utf8", stdio: "pipe" }) };
  } catch (e) {
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}`.trim() || e.message };
  }
}

{
  const probe = run(deepsearch, ["version"]);
  if (!probe.ok) usage(`${deepsearch} does not run: ${probe.out}`);
}

// "host:port" -> {host, port}.
function splitAddress(address) {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

// Whether `file` lies under `dir` (both absolute paths).
const under = (file, dir) => file === dir || file.startsWith(dir.endsWith("/") ? dir : `${dir}/`);

// The flags of a subcommand, from its --help (cached).
const helpCache = new Map();
function knownFlags(subcommand) {
  const key = subcommand.join(" ");
  if (!helpCache.has(key)) {
    const r = run(deepsearch, [...subcommand, "--help"]);
    helpCache.set(key, r.ok ? new Set(r.out.match(/--[a-z][a-z0-9-]*/g) ?? []) : null);
  }
  return helpCache.get(key);
}

// Subcommands that take a further subcommand word.
const NESTED = new Set(["model", "data", "config"]);

async function schemaCheck(obj) {
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : [null, obj.apiVersion];
  const module = group ? `kubernetes-models/${group}/${version}/${obj.kind}` : `kubernetes-models/${version}/${obj.kind}`;
  let Model;
  try {
    Model = (await import(module))[obj.kind];
  } catch {
    return [`no schema for ${obj.apiVersion} ${obj.kind}`];
  }
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    return [e.message];
  }
}

// Returns the problems found, the images used and the Secrets the render expects to exist.
async function checkKustomization(dir) {
  const problems = [];
  const images = new Set();
  const externalSecrets = new Set();
  const fail = (where, message) => problems.push(`${dir}: ${where}: ${message}`);

  const rendered = run("kubectl", ["kustomize", dir]);
  if (!rendered.ok) {
    fail("kubectl kustomize", rendered.out);
    return problems;
  }
  const objects = yaml.loadAll(rendered.out).filter((o) => o);
  const name = (o) => `${o.kind}/${o.metadata?.name}`;

  for (const o of objects) {
    for (const m of await schemaCheck(o)) fail(name(o), `schema: ${m}`);
  }

  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const services = byKind("Service");
  const configMaps = byKind("ConfigMap");
  const secrets = byKind("Secret");
  const workloads = objects.filter((o) => ["StatefulSet", "Deployment", "Job"].includes(o.kind));

  // The effective configuration of a config file with overrides (`deepsearch config show`
  // validates it too), or null after reporting why not.
  function effectiveConfig(where, text, overrides) {
    const key = JSON.stringify([text, overrides]);
    if (!configCache.has(key)) {
      const file = path.join(scratch, `config-${configCache.size}.yaml`);
      writeFileSync(file, text);
      const shown = run(deepsearch, ["config", "show", file, ...overrides.flatMap((o) => ["--set", o])]);
      configCache.set(key, shown.ok ? yaml.load(shown.out) : { error: shown.out });
    }
    const config = configCache.get(key);
    if (config.error) fail(where, `deepsearch config show: ${config.error}`);
    return config.error ? null : config;
  }

  // Services that route to a pod template: those whose selector its labels satisfy. The
  // StatefulSet controller adds statefulset.kubernetes.io/pod-name to each pod itself (the
  // learner's Service uses it to pick rank 0), so the template cannot carry it.
  const routesTo = (svc, labels) =>
    Object.entries(svc.spec.selector ?? {}).every(
      ([k, v]) => labels[k] === v || k === "statefulset.kubernetes.io/pod-name",
    );

  // Checks that `address` reaches a container port `port` of a workload labelled `component`.
  function checkAddress(where, address, component, portName) {
    const { host, port } = splitAddress(address);
    const target = workloads.find(
      (w) => w.spec.template.metadata.labels?.["app.kubernetes.io/component"] === component,
    );
    if (!target) return fail(where, `${address}: no ${component} workload in the render`);
    const containerPort = target.spec.template.spec.containers
      .flatMap((c) => c.ports ?? [])
      .find((p) => p.name === portName);
    const svcName = host.split(".")[0];
    const svc = services.find((s) => s.metadata.name === svcName);
    if (!svc) return fail(where, `${address}: no Service ${svcName}`);
    if (!routesTo(svc, target.spec.template.metadata.labels))
      fail(where, `${address}: Service ${svcName} does not select the ${component} pods`);
    const sp = (svc.spec.ports ?? []).find((p) => p.port === port);
    if (!sp) return fail(where, `${address}: Service ${svcName} has no port ${port}`);
    const targetPort = sp.targetPort ?? sp.port;
    const reaches =
      containerPort &&
      (targetPort === containerPort.name || targetPort === containerPort.containerPort);
    if (!reaches)
      fail(where, `${address}: Service ${svcName} port ${port} does not reach the ${component}'s ${portName} port`);
  }

  const modelInits = [];
  for (const w of workloads) {
    const pod = w.spec.template.spec;
    const labels = w.spec.template.metadata.labels ?? {};
    const component = labels["app.kubernetes.io/component"];
    if (!pod.securityContext?.runAsNonRoot) fail(name(w), "pods must set runAsNonRoot");
    if (w.kind === "StatefulSet") {
      const headless = services.find((s) => s.metadata.name === w.spec.serviceName);
      if (!headless || headless.spec.clusterIP !== "None")
        fail(name(w), `serviceName ${w.spec.serviceName} is not a headless Service of the render`);
    }
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    for (const t of w.spec.volumeClaimTemplates ?? []) volumes.set(t.metadata.name, { pvc: true });
    for (const v of volumes.values()) {
      const ref = v.configMap?.name;
      if (ref && !configMaps.some((c) => c.metadata.name === ref))
        fail(name(w), `volume ${v.name}: no ConfigMap ${ref} in the render`);
      const secret = v.secret;
      if (secret && !secret.optional && !secrets.some((s) => s.metadata.name === secret.secretName))
        externalSecrets.add(secret.secretName);
    }
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      const where = `${name(w)} container ${c.name}`;
      images.add(c.image);
      const mounts = (c.volumeMounts ?? []).map((m) => {
        if (!volumes.has(m.name)) fail(where, `volumeMount ${m.name} has no volume`);
        return { ...m, volume: volumes.get(m.name) };
      });
      const mountOf = (file) =>
        mounts.filter((m) => under(file, m.mountPath)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
      const needMount = (what, file, { writable = false, secret = false } = {}) => {
        const m = mountOf(file);
        if (!m) return fail(where, `${what} ${file} is not under a volume mount`);
        if (writable && m.readOnly) fail(where, `${what} ${file} is on a read-only mount`);
        if (secret && !m.volume?.secret) return fail(where, `${what} ${file} is not on a Secret volume`);
        const secretName = m.volume?.secret?.secretName;
        if (secret && !secrets.some((s) => s.metadata.name === secretName)) externalSecrets.add(secretName);
      };

      // args: substitute the env, check the flags against the subcommand's --help.
      const env = new Map((c.env ?? []).map((e) => [e.name, e]));
      const args = (c.args ?? []).map((a) =>
        a.replace(/\$\(([A-Z_]+)\)/g, (_, v) => {
          if (!env.has(v)) fail(where, `args use $(${v}), which the container's env does not define`);
          return SAMPLE_ENV[v] ?? "x";
        }),
      );
      if (c.command) fail(where, "the image's entrypoint is deepsearch: set args, not command");
      const sub = NESTED.has(args[0]) ? args.slice(0, 2) : args.slice(0, 1);
      const flags = knownFlags(sub);
      if (!flags) {
        fail(where, `deepsearch ${sub.join(" ")}: not a subcommand of the binary`);
        continue;
      }
      for (const a of args) {
        const flag = a.startsWith("--") ? a.split("=")[0] : null;
        if (flag && !flags.has(flag)) fail(where, `deepsearch ${sub.join(" ")} has no flag ${flag}`);
      }
      const option = (flag) => {
        const i = args.indexOf(flag);
        return i >= 0 ? args[i + 1] : undefined;
      };
      const out = option("--out");
      if (out) needMount("--out", out, { writable: true });
      if (sub.join(" ") === "model init") {
        modelInits.push({ where, component, preset: option("--preset") ?? "tiny", seed: option("--seed") ?? "0" });
      }

      // Commands that read the config file: its effective values must fit the pod.
      const configPath = option("--config");
      if (!configPath) continue;
      const cm = mountOf(configPath);
      const cmName = cm?.volume?.configMap?.name;
      const cmObj = configMaps.find((x) => x.metadata.name === cmName);
      if (!cmObj || path.posix.relative(cm.mountPath, configPath) !== CONFIG_MOUNT_FILE ||
          !(CONFIG_MOUNT_FILE in (cmObj.data ?? {}))) {
        fail(where, `--config ${configPath} is not ${CONFIG_MOUNT_FILE} of a mounted ConfigMap`);
        continue;
      }
      const overrides = args.flatMap((a, i) => (args[i - 1] === "--set" ? [a] : []));
      const config = effectiveConfig(where, cmObj.data[CONFIG_MOUNT_FILE], overrides);
      if (!config) continue;
      const tls = config.rpc.tls;
      if (tls.enabled) {
        for (const k of ["cert_file", "key_file", "ca_file"])
          if (tls[k]) needMount(`rpc.tls.${k}`, tls[k], { secret: true });
      }
      if (config.rpc.auth.token_file)
        needMount("rpc.auth.token_file", config.rpc.auth.token_file, { secret: true });

      const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
      if (ports.size !== (c.ports ?? []).length) fail(where, "two container ports share a name");
      const expectPort = (portName, address, key) => {
        const { port } = splitAddress(address);
        if (ports.get(portName) !== port)
          fail(where, `${key} ${address}: the container port named ${portName} is ${ports.get(portName) ?? "missing"}, not ${port}`);
      };
      const probes = [c.startupProbe, c.readinessProbe, c.livenessProbe].filter(Boolean);
      const checkProbes = (grpcPort) => {
        if (probes.length < 2) fail(where, "needs readiness and liveness probes");
        for (const p of probes) {
          if (p.exec) {
            const cmd = p.exec.command;
            if (cmd[0] !== "deepsearch" || cmd[1] !== "health")
              fail(where, `exec probe ${cmd.join(" ")} is not deepsearch health`);
            const probeConfig = cmd[cmd.indexOf("--config") + 1];
            if (cmd.includes("--config") && probeConfig !== configPath)
              fail(where, `probe reads ${probeConfig}, the container ${configPath}`);
            const address = cmd[cmd.length - 1];
            if (grpcPort === undefined || splitAddress(address).port !== grpcPort)
              fail(where, `probe asks ${address}, but the server listens on port ${grpcPort}`);
            if (tls.enabled && splitAddress(address).host !== "localhost")
              fail(where, `with TLS the probe must dial localhost (the certificate's name), not ${address}`);
          } else if (p.httpGet) {
            if (p.httpGet.path !== "/healthz" || p.httpGet.port !== "metrics" || !config.metrics.listen_address)
              fail(where, "HTTP probes ask /healthz on the metrics port, with metrics.listen_address set");
          } else if (p.grpc) {
            if (tls.enabled) fail(where, "Kubernetes' gRPC probes cannot speak TLS; use deepsearch health");
            if (p.grpc.port !== grpcPort) fail(where, `gRPC probe on ${p.grpc.port}, server on ${grpcPort}`);
          }
        }
      };
      const command = sub[0];
      if (["learner", "cache", "actor"].includes(command) && config.metrics.listen_address)
        expectPort("metrics", config.metrics.listen_address, "metrics.listen_address");
      if (command === "learner") {
        const l = config.learner;
        expectPort("grpc", l.listen_address, "learner.listen_address");
        checkProbes(splitAddress(l.listen_address).port);
        needMount("learner.state_dir", l.state_dir, { writable: true });
        needMount("learner.model", l.model);
        const made = (pod.initContainers ?? []).some((i) => {
          const a = i.args ?? [];
          return a[a.indexOf("--out") + 1] === l.model;
        });
        if (!made) fail(where, `learner.model ${l.model} is written by no init container`);
        if (l.cache_address) checkAddress(`${where} learner.cache_address`, l.cache_address, "cache", "grpc");
        const dp = l.data_parallel;
        if (dp.world_size !== (w.spec.replicas ?? 1))
          fail(where, `learner.data_parallel.world_size ${dp.world_size} != the StatefulSet's replicas ${w.spec.replicas ?? 1}`);
        if (dp.world_size > 1) {
          const { host } = splitAddress(dp.master);
          if (host !== `${w.metadata.name}-0.${w.spec.serviceName}`)
            fail(where, `learner.data_parallel.master ${dp.master} is not rank 0's stable name ${w.metadata.name}-0.${w.spec.serviceName}`);
          expectPort("c10d", dp.master, "learner.data_parallel.master");
          const headless = services.find((s) => s.metadata.name === w.spec.serviceName);
          if (headless && !headless.spec.publishNotReadyAddresses)
            fail(where, `the rendezvous Service ${headless.metadata.name} must publish not-ready addresses`);
          if (w.spec.podManagementPolicy !== "Parallel")
            fail(where, "ranks must start in parallel (podManagementPolicy: Parallel): rank 0 waits for the others");
        }
      } else if (command === "cache") {
        expectPort("grpc", config.cache.listen_address, "cache.listen_address");
        checkProbes(splitAddress(config.cache.listen_address).port);
        needMount("cache.store_dir", config.cache.store_dir, { writable: true });
      } else if (command === "actor") {
        const a = config.actor;
        checkProbes(undefined);
        needMount("actor.model", a.model);
        checkAddress(`${where} actor.learner_address`, a.learner_address, "learner", "grpc");
        if (a.cache_address) checkAddress(`${where} actor.cache_address`, a.cache_address, "cache", "grpc");
      } else if (command === "submit") {
        checkAddress(`${where} --learner`, option("--learner"), "learner", "grpc");
        const problems = option("--problems");
        needMount("--problems", problems);
        const made = (pod.initContainers ?? []).some((i) => (i.args ?? []).includes(problems));
        if (!made) fail(where, `--problems ${problems} is written by no init container`);
      }
    }
  }

  // One image for every container; the learner's and the actors' models of one architecture.
  if (images.size !== 1) fail("images", `expected one image, found ${[...images].join(", ")}`);
  const shapes = new Set(modelInits.map((m) => `--preset ${m.preset} --seed ${m.seed}`));
  if (shapes.size > 1)
    fail("model init", `the learner's and the actors' models differ: ${modelInits.map((m) => `${m.where}: ${m.preset}/${m.seed}`).join("; ")}`);
  return { problems, images, externalSecrets };
}

// Configurations seen in any kustomization, by [text, overrides].
const configCache = new Map();
let failed = 0;
for (const dir of dirs) {
  const { problems, images, externalSecrets } = await checkKustomization(dir);
  for (const p of problems) console.error(p);
  failed += problems.length;
  const extra = externalSecrets.size ? `; Secrets the operator provides: ${[...externalSecrets].join(", ")}` : "";
  console.log(`${dir}: ${problems.length === 0 ? "OK" : `${problems.length} problem(s)`} (image ${[...images].join(", ")}${extra})`);
}
process.exit(failed === 0 ? 0 : 1);
