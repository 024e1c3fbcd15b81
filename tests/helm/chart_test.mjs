// The Helm chart, rendered for several value sets by the real helm and checked two ways: every object against the
// Kubernetes API schemas (the npm kubernetes-models package, which validates each kind independently of helm), and
// what a serving group needs (tp x pp workers, the coordinator's --workers naming exactly the workers' DNS names,
// Guaranteed QoS, threads from the CPU limit, probes, mounted secrets). Usage: node chart_test.mjs NPM_DIR CHART
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const [npmDir, chartDir] = process.argv.slice(2);
const helm = join(npmDir, ".bin", "helm");
const helmHome = mkdtempSync(join(tmpdir(), "phx-helm-"));
process.on("exit", () => rmSync(helmHome, { recursive: true, force: true }));
const helmEnv = {
  ...process.env,
  HELM_CACHE_HOME: join(helmHome, "cache"),
  HELM_CONFIG_HOME: join(helmHome, "config"),
  HELM_DATA_HOME: join(helmHome, "data"),
};
const importNpm = (file) => import(pathToFileURL(resolve(npmDir, file)).href);
const YAML = await importNpm("yaml/dist/index.js");

const kNamespace = "serving";
const kRelease = "phi";

// helm template with --set-json pairs; returns the parsed objects (hooks and tests included).
function render(values) {
  const args = ["template", kRelease, chartDir, "--namespace", kNamespace];
  for (const [key, value] of Object.entries(values)) args.push("--set-json", `${key}=${JSON.stringify(value)}`);
  const out = execFileSync(helm, args, { env: helmEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return YAML.parseAllDocuments(out).map((d) => d.toJS()).filter((o) => o);
}

function renderFails(values) {
  const args = ["template", kRelease, chartDir];
  for (const [key, value] of Object.entries(values)) args.push("--set-json", `${key}=${JSON.stringify(value)}`);
  const run = spawnSync(helm, args, { env: helmEnv, encoding: "utf8" });
  return { failed: run.status !== 0, stderr: run.stderr };
}

// The schema model of a kind: kubernetes-models for the core API, the prometheus-operator package for monitors.
async function modelOf(object) {
  const [group, version] = object.apiVersion.includes("/") ? object.apiVersion.split("/") : ["", object.apiVersion];
  const file = group === "monitoring.coreos.com"
    ? `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${object.kind}.js`
    : `kubernetes-models/${group ? `${group}/` : ""}${version}/${object.kind}.js`;
  const module = await importNpm(file);
  return module[object.kind];
}

async function validateAll(objects) {
  for (const object of objects) {
    if (object.kind === "LeaderWorkerSet") {
      // No schema package for the LWS CRD: its two pod templates are validated as the PodTemplateSpecs they are.
      const { PodTemplateSpec } = await importNpm("kubernetes-models/v1/PodTemplateSpec.js");
      const group = object.spec.leaderWorkerTemplate;
      new PodTemplateSpec(group.leaderTemplate).validate();
      new PodTemplateSpec(group.workerTemplate).validate();
      continue;
    }
    const Model = await modelOf(object);
    assert.ok(Model, `no schema model for ${object.apiVersion} ${object.kind}`);
    new Model(object).validate();
  }
}

const find = (objects, kind, component) =>
  objects.filter((o) => o.kind === kind && (!component || o.metadata.labels?.["app.kubernetes.io/component"] === component));
const only = (objects, kind, component) => {
  const found = find(objects, kind, component);
  assert.equal(found.length, 1, `expected one ${kind} ${component ?? ""}, found ${found.length}`);
  return found[0];
};
const argAfter = (args, flag) => {
  const at = args.indexOf(flag);
  assert.ok(at >= 0 && at + 1 < args.length, `${flag} missing from ${args.join(" ")}`);
  return args[at + 1];
};

// The pod specs of a group, whichever mode rendered it.
function groupPods(objects) {
  const lws = find(objects, "LeaderWorkerSet")[0];
  if (lws) {
    const t = lws.spec.leaderWorkerTemplate;
    return { coordinator: t.leaderTemplate.spec, worker: t.workerTemplate.spec, workers: t.size - 1, lws };
  }
  const workers = only(objects, "StatefulSet", "worker");
  const coordinator = only(objects, "Deployment", "coordinator");
  return { coordinator: coordinator.spec.template.spec, worker: workers.spec.template.spec, workers: workers.spec.replicas };
}

// The DNS names the workers get: a StatefulSet's <name>-<ordinal>.<serviceName>, or LWS's <lws>-0-<index>.<lws>.
function expectedWorkerNames(objects) {
  const lws = find(objects, "LeaderWorkerSet")[0];
  const port = (pod) => pod.containers[0].ports.find((p) => p.name === "control").containerPort;
  if (lws) {
    const name = lws.metadata.name;
    const n = lws.spec.leaderWorkerTemplate.size - 1;
    const p = port(lws.spec.leaderWorkerTemplate.workerTemplate.spec);
    return Array.from({ length: n }, (_, i) => `${name}-0-${i + 1}.${name}.${kNamespace}.svc.cluster.local:${p}`);
  }
  const set = only(objects, "StatefulSet", "worker");
  const service = only(objects, "Service", "worker");
  assert.equal(set.spec.serviceName, service.metadata.name, "the StatefulSet names its headless Service");
  assert.equal(service.spec.clusterIP, "None");
  assert.equal(service.spec.publishNotReadyAddresses, true);
  const p = port(set.spec.template.spec);
  return Array.from({ length: set.spec.replicas },
    (_, i) => `${set.metadata.name}-${i}.${service.metadata.name}.${kNamespace}.svc.cluster.local:${p}`);
}

function checkGuaranteed(pod, what) {
  for (const c of pod.containers) {
    assert.deepEqual(c.resources.requests, c.resources.limits, `${what} ${c.name}: requests equal limits`);
    assert.match(String(c.resources.limits.cpu), /^[1-9][0-9]*$/, `${what} ${c.name}: whole CPUs`);
  }
}

function checkSecure(pod, what) {
  assert.equal(pod.securityContext.runAsNonRoot, true, `${what}: non-root`);
  for (const c of pod.containers) {
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${what}: read-only root`);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"], `${what}: no capabilities`);
  }
}

// A file argument must lie in a volume mounted from the named Secret, holding that key.
function checkSecretFile(pod, path, secretName, key) {
  const c = pod.containers[0];
  const mount = c.volumeMounts.find((m) => path.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `${path} is not under any mount`);
  const volume = pod.volumes.find((v) => v.name === mount.name);
  assert.equal(volume.secret?.secretName, secretName, `${path} comes from Secret ${secretName}`);
  assert.equal(path.slice(mount.mountPath.length + 1), key);
}

function checkGroup(objects, { tp, pp }) {
  const group = groupPods(objects);
  const { coordinator, worker, workers } = group;
  assert.equal(workers, tp * pp, "tp x pp workers");
  const cArgs = coordinator.containers[0].args;
  assert.deepEqual(argAfter(cArgs, "--workers").split(","), expectedWorkerNames(objects));
  assert.equal(argAfter(cArgs, "--tp"), String(tp));
  assert.equal(argAfter(cArgs, "--pp"), String(pp));
  checkGuaranteed(coordinator, "coordinator");
  checkGuaranteed(worker, "worker");
  checkSecure(coordinator, "coordinator");
  checkSecure(worker, "worker");

  // Threads: the worker's CPU limit through the Downward API, and the coordinator tells every worker the same.
  const w = worker.containers[0];
  assert.equal(argAfter(w.args, "--threads"), "$(PHX_THREADS)");
  const threads = w.env.find((e) => e.name === "PHX_THREADS").valueFrom.resourceFieldRef;
  assert.equal(threads.resource, "limits.cpu");
  assert.equal(threads.containerName, w.name);
  assert.equal(argAfter(cArgs, "--threads"), String(w.resources.limits.cpu));

  // Probes: startup and readiness on /health, liveness on the port only.
  const c = coordinator.containers[0];
  assert.equal(c.startupProbe.httpGet.path, "/health");
  assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 600, "startup allows a long load");
  assert.equal(c.readinessProbe.httpGet.path, "/health");
  assert.ok(c.livenessProbe.tcpSocket && !c.livenessProbe.httpGet, "liveness never on /health");
  // Workers: readiness and liveness on /health of the metrics port, the port --metrics serves.
  const metricsPort = w.ports.find((p) => p.name === "metrics").containerPort;
  assert.equal(argAfter(w.args, "--metrics"), `0.0.0.0:${metricsPort}`);
  for (const probe of [w.readinessProbe, w.livenessProbe]) {
    assert.equal(probe.httpGet.path, "/health");
    assert.equal(probe.httpGet.port, "metrics");
  }

  // /dev/shm as a memory emptyDir for UCX's shared-memory transport.
  const shm = w.volumeMounts.find((m) => m.mountPath === "/dev/shm");
  assert.equal(worker.volumes.find((v) => v.name === shm.name).emptyDir.medium, "Memory");
  // The model at one path everywhere.
  const modelMount = (pod) => pod.containers[0].volumeMounts.find((m) => m.name === "model").mountPath;
  assert.equal(modelMount(coordinator), modelMount(worker));
  assert.ok(argAfter(cArgs, "--model").startsWith(`${modelMount(worker)}/`));
  assert.equal(argAfter(w.args, "--model-root"), modelMount(worker));
  return group;
}

const kSecrets = {
  "apiKey.value": "test-api-key",
  "clusterSecret.value": "0123456789abcdef-cluster",
};

test("TP 2 with secrets, monitors and the dashboard", async () => {
  const objects = render({
    tp: 2, ...kSecrets,
    "monitoring.serviceMonitor.enabled": true, "monitoring.podMonitor.enabled": true,
    "monitoring.dashboard.enabled": true,
  });
  await validateAll(objects);
  const { coordinator, worker } = checkGroup(objects, { tp: 2, pp: 1 });
  const set = only(objects, "StatefulSet", "worker");
  assert.equal(set.spec.podManagementPolicy, "Parallel");
  assert.equal(set.spec.updateStrategy.type, "OnDelete");
  assert.equal(only(objects, "Deployment", "coordinator").spec.strategy.type, "Recreate");

  const secretName = (key) => find(objects, "Secret").find((s) => key in s.stringData).metadata.name;
  const cArgs = coordinator.containers[0].args;
  checkSecretFile(coordinator, argAfter(cArgs, "--api-key-file"), secretName("api-key"), "api-key");
  checkSecretFile(coordinator, argAfter(cArgs, "--cluster-secret-file"), secretName("cluster-secret"), "cluster-secret");
  checkSecretFile(worker, argAfter(worker.containers[0].args, "--cluster-secret-file"), secretName("cluster-secret"),
    "cluster-secret");

  // The ServiceMonitor's port is a named port of the API Service it selects; the PodMonitor's a worker port.
  const monitor = only(objects, "ServiceMonitor");
  const api = find(objects, "Service").find((s) =>
    Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels[k] === v));
  assert.ok(api.spec.ports.some((p) => p.name === monitor.spec.endpoints[0].port));
  assert.equal(monitor.spec.endpoints[0].path, "/metrics");
  // With an API key /metrics asks for it too: the monitor sends it from the same Secret.
  assert.deepEqual(monitor.spec.endpoints[0].authorization,
                   { type: "Bearer", credentials: { name: secretName("api-key"), key: "api-key" } });
  const podMonitor = only(objects, "PodMonitor");
  assert.ok(worker.containers[0].ports.some((p) => p.name === podMonitor.spec.podMetricsEndpoints[0].port));

  const dashboard = find(objects, "ConfigMap").find((m) => m.metadata.labels.grafana_dashboard === "1");
  assert.ok(JSON.parse(dashboard.data["phalanx-dashboard.json"]).panels.length > 0);

  // The helm test pod drives the API Service with generate --cluster.
  const testPod = find(objects, "Pod").find((p) => p.metadata.annotations?.["helm.sh/hook"] === "test");
  const tArgs = testPod.spec.containers[0].args;
  assert.equal(tArgs[0], "generate");
  assert.equal(argAfter(tArgs, "--cluster"), `${api.metadata.name}:${api.spec.ports[0].port}`);
});

test("TP 2 x PP 2 lists four workers stage by stage", async () => {
  const objects = render({ tp: 2, pp: 2 });
  await validateAll(objects);
  checkGroup(objects, { tp: 2, pp: 2 });
});

test("TP 5 with INT8 weights and KV", async () => {
  const objects = render({ tp: 5, dtype: "int8", kvDtype: "int8", "worker.cpu": 4, "worker.memory": "9Gi" });
  await validateAll(objects);
  const { coordinator } = checkGroup(objects, { tp: 5, pp: 1 });
  assert.equal(argAfter(coordinator.containers[0].args, "--dtype"), "int8");
  assert.equal(argAfter(coordinator.containers[0].args, "--kv-dtype"), "int8");
});

test("MPI in LeaderWorkerSet mode recreates the group on a restart", async () => {
  const objects = render({ tp: 2, transport: "mpi", groupMode: "leaderWorkerSet" });
  await validateAll(objects);
  const { worker, lws } = checkGroup(objects, { tp: 2, pp: 1 });
  assert.equal(lws.apiVersion, "leaderworkerset.x-k8s.io/v1");
  assert.equal(lws.spec.leaderWorkerTemplate.restartPolicy, "RecreateGroupOnPodRestart");
  assert.equal(argAfter(worker.containers[0].args, "--transport"), "mpi");
  assert.equal(find(objects, "StatefulSet").length, 0);
});

test("UCX in LeaderWorkerSet mode keeps survivors on a restart", async () => {
  const objects = render({ tp: 2, pp: 2, groupMode: "leaderWorkerSet" });
  await validateAll(objects);
  const { lws } = checkGroup(objects, { tp: 2, pp: 2 });
  assert.equal(lws.spec.leaderWorkerTemplate.restartPolicy, "None");
});

test("hostNetwork with an RDMA device resource", async () => {
  const objects = render({
    tp: 2, hostNetwork: true, "rdma.resourceName": "rdma/hca_shared_devices_a", "ucx.tls": "rc,sm,self",
    "ucx.netDevices": "mlx5_0:1",
  });
  await validateAll(objects);
  const { worker } = checkGroup(objects, { tp: 2, pp: 1 });
  assert.equal(worker.hostNetwork, true);
  assert.equal(worker.dnsPolicy, "ClusterFirstWithHostNet");
  const resources = worker.containers[0].resources;
  assert.equal(resources.limits["rdma/hca_shared_devices_a"], "1");
  assert.equal(worker.containers[0].env.find((e) => e.name === "UCX_NET_DEVICES").value, "mlx5_0:1");
});

test("the schema refuses values that cannot deploy", () => {
  for (const [values, field] of [
    [{ tp: 0 }, "tp"],
    [{ "worker.cpu": 1.5 }, "cpu"],
    [{ kvDtype: "fp8" }, "kvDtype"],
    [{ groupMode: "deployment" }, "groupMode"],
    [{ "clusterSecret.value": "short" }, "clusterSecret"],
  ]) {
    const { failed, stderr } = renderFails(values);
    assert.ok(failed, `helm accepted ${JSON.stringify(values)}`);
    assert.match(stderr, new RegExp(field), `the error names ${field}: ${stderr}`);
  }
});

test("helm lint --strict passes", () => {
  execFileSync(helm, ["lint", "--strict", chartDir], { env: helmEnv, stdio: "pipe" });
});
