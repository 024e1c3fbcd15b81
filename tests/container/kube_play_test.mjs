// The chart's own pods, run for real: the chart rendered by the real helm for a TP 2 group, its objects turned into
// the pods Kubernetes would run (kube_pods.mjs), and those run by `podman kube play` on one podman network whose
// DNS domain is the workers' headless Service domain, so every pod finds the others by the names the chart gives
// them. Then, in order: the prepare-model Job's pod writes the checkpoint; the group comes up; the official openai
// client streams a chat completion through the coordinator; the `helm test` pod passes; a worker pod is deleted and
// played again, as the StatefulSet controller would, while a request waits, and that request gets the same greedy
// answer without the coordinator restarting; Debian's real Prometheus scrapes the coordinator and both workers at
// the ports and paths the ServiceMonitor and PodMonitor name. Test traffic goes only to the pods' own addresses.
//
// Stand-ins, since no API server exists here: the coordinator pod is named as the API Service (podman has no
// Services, so the Service's name resolves to the pod itself), and Prometheus gets the monitors' targets as static
// configs (the operator would discover the same endpoints). Prints one JSON line of timings at the end.
//
// usage: node kube_play_test.mjs NPM_DIR CHART IMAGE     (as root, podman with scripts/containers.conf)
// PHX_KUBE_KEEP=1 leaves the pods, the network and the rendered files in place for a look afterwards.
import { strict as assert } from "node:assert";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

import { asKubeletWould, barePod, statefulSetPods, templatePod } from "./kube_pods.mjs";

const [npmDir, chartDir, image] = process.argv.slice(2);
const repo = resolve(chartDir, "../..");
const env = { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? join(repo, "scripts/containers.conf") };
const YAML = await import(pathToFileURL(resolve(npmDir, "yaml/dist/index.js")).href);
const OpenAI = createRequire(join(resolve(npmDir), "client.cjs"))("openai");

const kRelease = "phi";
const kNamespace = "serving";
const kApiKey = "kube-play-api-key-0123456789";
const scratch = mkdtempSync(join(tmpdir(), "phx-kube-"));
const scratchMemory = mkdtempSync("/dev/shm/phx-kube-");  // memory emptyDirs (a tmpfs, as medium Memory is)
const network = `phx-kube-${process.pid}`;
const played = [];  // pod names, removed at the end
const timings = {};
let objects;
let coordinatorUrl;
let client;  // the openai client on the coordinator, once it is up
let model;   // the model name the coordinator serves (--model-name)

const podman = (...args) => execFileSync("podman", args, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const seconds = (since) => Math.round(performance.now() - since) / 1000;
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const find = (kind, suffix = "") => objects.find((o) => o.kind === kind && o.metadata.name.endsWith(suffix));

async function waitFor(what, timeoutSeconds, probe) {
  const deadline = performance.now() + timeoutSeconds * 1000;
  let last;
  while (performance.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await sleep(500);
  }
  throw new Error(`${what}: not within ${timeoutSeconds} s${last ? ` (last: ${last.message})` : ""}`);
}

function render() {
  const values = {
    "image.repository": image.slice(0, image.lastIndexOf(":")), "image.tag": image.slice(image.lastIndexOf(":") + 1),
    tp: 2, pp: 1, kvTokens: 1024,
    "worker.cpu": 1, "worker.memory": "1Gi", "worker.shmSize": "256Mi",
    "coordinator.cpu": 1, "coordinator.memory": "1Gi", "coordinator.recoveryTimeoutSeconds": 120,
    "model.source": "hostPath", "model.hostPath.path": join(scratch, "models"), "model.directory": "tiny",
    "model.prepare.enabled": true,
    "model.prepare.args": ["--preset", "tiny", "--out", "/models/tiny", "--seed", "1"],
    "apiKey.value": kApiKey, "clusterSecret.value": "kube-play-cluster-secret-0123456789",
    "monitoring.serviceMonitor.enabled": true, "monitoring.podMonitor.enabled": true,
  };
  const helmHome = join(scratch, "helm");
  const args = ["template", kRelease, chartDir, "--namespace", kNamespace];
  for (const [key, value] of Object.entries(values)) args.push("--set-json", `${key}=${JSON.stringify(value)}`);
  const out = execFileSync(join(npmDir, ".bin", "helm"), args, {
    encoding: "utf8",
    env: { ...process.env, HELM_CACHE_HOME: `${helmHome}/c`, HELM_CONFIG_HOME: `${helmHome}/f`, HELM_DATA_HOME: `${helmHome}/d` },
  });
  return YAML.parseAllDocuments(out).map((d) => d.toJS()).filter((o) => o);
}

// Writes the pod as its own YAML file (so it can be played again) and plays it on the group's network.
function play(podObject) {
  const secrets = new Map(objects.filter((o) => o.kind === "Secret").map((s) => [s.metadata.name, s]));
  const ready = asKubeletWould(structuredClone(podObject), secrets, { disk: scratch, memory: scratchMemory });
  const file = join(scratch, "pods", `${ready.metadata.name}.yaml`);
  mkdirSync(join(scratch, "pods"), { recursive: true });
  writeFileSync(file, YAML.stringify(ready));
  podman("kube", "play", "--network", network, file);
  if (!played.includes(ready.metadata.name)) played.push(ready.metadata.name);
}

function podIp(name) {
  const infra = podman("pod", "inspect", name, "--format", "{{.InfraContainerID}}").trim();
  return podman("inspect", infra, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").trim();
}

// Podman names a pod's container <pod>-<container>.
function containerState(pod, container) {
  const [status, exitCode, startedAt, restarts] =
    podman("inspect", `${pod}-${container}`, "--format", "{{.State.Status}}|{{.State.ExitCode}}|{{.State.StartedAt}}|{{.RestartCount}}")
      .trim().split("|");
  return { status, exitCode: Number(exitCode), startedAt, restarts: Number(restarts) };
}

// A container's output, stdout and stderr (podman logs writes the container's stderr to its own).
function containerLogs(name, tail = 40) {
  const logs = spawnSync("podman", ["logs", "--tail", String(tail), name], { env, encoding: "utf8" });
  return `${logs.stdout}${logs.stderr}`;
}

async function waitExited(pod, container, timeoutSeconds) {
  const state = await waitFor(`${pod} to finish`, timeoutSeconds, () => {
    const now = containerState(pod, container);
    return now.status === "exited" ? now : null;
  });
  return { ...state, logs: containerLogs(`${pod}-${container}`) };
}

function portOf(podSpec, name) {
  for (const container of podSpec.containers) {
    const port = (container.ports ?? []).find((p) => p.name === name);
    if (port) return port.containerPort;
  }
  throw new Error(`no container port named ${name}`);
}

before(() => {
  objects = render();
  podman("network", "create", network);
  // The network's DNS domain is the workers' Service domain: <pod> resolves as <pod>.<service>.<ns>.svc.<domain>.
  const conflist = `/etc/cni/net.d/${network}.conflist`;
  assert.ok(existsSync(conflist), `${conflist}: this test needs podman's CNI backend with the dnsname plugin`);
  const domain = `${find("StatefulSet").spec.serviceName}.${kNamespace}.svc.cluster.local`;
  writeFileSync(conflist, readFileSync(conflist, "utf8").replace('"domainName": "dns.podman"', `"domainName": "${domain}"`));
  mkdirSync(join(scratch, "models"));
  chmodSync(join(scratch, "models"), 0o777);  // the prepare Job's pod writes it as the chart's non-root user
});

after(() => {
  console.log(JSON.stringify({ kube_play_timings_seconds: timings }));
  // The pods' last words, for a failure's report (ctest shows the output of failed tests only).
  for (const name of played) {
    try {
      const containers = podman("pod", "inspect", name, "--format", "{{range .Containers}}{{.Name}} {{end}}");
      for (const container of containers.trim().split(" ").filter((c) => !c.endsWith("-infra"))) {
        console.log(`--- ${container}\n${containerLogs(container, 15)}`);
      }
    } catch { /* gone */ }
  }
  if (process.env.PHX_KUBE_KEEP) {
    console.log(`PHX_KUBE_KEEP: pods ${played.join(" ")} on network ${network}, files in ${scratch}`);
    return;
  }
  for (const name of played) {
    try { podman("pod", "rm", "--force", "--time", "2", name); } catch { /* already gone */ }
  }
  try { podman("network", "rm", "--force", network); } catch { /* already gone */ }
  rmSync(scratch, { recursive: true, force: true });
  rmSync(scratchMemory, { recursive: true, force: true });
});

test("the prepare-model Job's pod writes the checkpoint into the model volume", async () => {
  const job = find("Job", "-prepare-model");
  const name = `${job.metadata.name}-0`;
  play(templatePod(job, name));
  const result = await waitExited(name, "prepare", 300);
  assert.equal(result.exitCode, 0, result.logs);
  assert.ok(existsSync(join(scratch, "models/tiny/config.json")), "config.json written");
});

test("the StatefulSet's workers and the coordinator come up and find each other by name", async () => {
  const start = performance.now();
  const workers = statefulSetPods(find("StatefulSet"));
  assert.equal(workers.length, 2);
  for (const worker of workers) play(worker);
  const service = find("Service", `${kRelease}-phalanx`);
  play(templatePod(find("Deployment"), service.metadata.name));
  const port = portOf(find("Deployment").spec.template.spec, "http");
  coordinatorUrl = `http://${podIp(service.metadata.name)}:${port}`;
  await waitFor("the coordinator's /health to answer 200", 300,
                async () => (await fetch(`${coordinatorUrl}/health`)).status === 200);
  timings.pods_up = seconds(start);
  const metricsPort = portOf(workers[0].spec, "metrics");
  for (const worker of workers) {
    const health = await (await fetch(`http://${podIp(worker.metadata.name)}:${metricsPort}/health`)).json();
    assert.deepEqual([health.status, health.state], ["ok", "ready"], `${worker.metadata.name}: ${JSON.stringify(health)}`);
  }
});

const kChat = { messages: [{ role: "user", content: "Name three colours." }], max_tokens: 12, temperature: 0 };
let wholeAnswer;

test("the official openai client streams a chat completion through the coordinator", async () => {
  client = new OpenAI({ baseURL: `${coordinatorUrl}/v1`, apiKey: kApiKey, maxRetries: 0 });
  const args = find("Deployment").spec.template.spec.containers[0].args;
  model = args[args.indexOf("--model-name") + 1];
  const start = performance.now();
  const stream = await client.chat.completions.create({ ...kChat, model, stream: true,
                                                        stream_options: { include_usage: true } });
  let text = "";
  let chunks = 0;
  let usage;
  let finish;
  for await (const chunk of stream) {
    if (chunks++ === 0) timings.first_token = seconds(start);
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
  }
  assert.ok(chunks > 2, `${chunks} chunks`);
  assert.ok(["stop", "length"].includes(finish), `finish_reason ${finish}`);
  assert.ok(usage && usage.completion_tokens >= 1 && usage.completion_tokens <= kChat.max_tokens, JSON.stringify(usage));
  const whole = await client.chat.completions.create({ ...kChat, model });
  wholeAnswer = whole.choices[0].message.content;
  assert.equal(text, wholeAnswer, "greedy: streamed and whole agree");
  const anonymous = new OpenAI({ baseURL: `${coordinatorUrl}/v1`, apiKey: "wrong-key", maxRetries: 0 });
  await assert.rejects(anonymous.chat.completions.create({ ...kChat, model }), (e) => e.status === 401);
});

test("the helm test pod passes against the Service's name", async () => {
  const hook = objects.find((o) => o.metadata.annotations?.["helm.sh/hook"] === "test");
  play(barePod(hook));
  const result = await waitExited(hook.metadata.name, hook.spec.containers[0].name, 180);
  assert.equal(result.exitCode, 0, result.logs);
});

test("a deleted worker pod, played again as its StatefulSet would, serves the waiting request", async () => {
  const coordinator = find("Service", `${kRelease}-phalanx`).metadata.name;
  const before = containerState(coordinator, "coordinator");
  const worker = statefulSetPods(find("StatefulSet"))[1];
  const start = performance.now();
  podman("pod", "rm", "--force", "--time", "0", worker.metadata.name);
  // Settled at once into a value, so a failure is reported here rather than as an unhandled rejection.
  const waiting = client.chat.completions.create({ ...kChat, model }, { timeout: 180000 })
    .then((reply) => ({ reply }), (error) => ({ error }));
  await sleep(1000);
  play(worker);
  const { reply, error } = await waiting;
  assert.ok(reply, `the waiting request failed: ${error?.message} ${error?.cause?.message ?? ""}`);
  const answer = reply.choices[0].message.content;
  timings.worker_replaced_to_answer = seconds(start);
  assert.equal(answer, wholeAnswer, "the same greedy answer after the worker came back");
  const now = containerState(coordinator, "coordinator");
  assert.deepEqual([now.startedAt, now.restarts, now.status], [before.startedAt, before.restarts, "running"],
                   "the coordinator kept running");
});

test("Prometheus scrapes the coordinator and the workers where the ServiceMonitor and PodMonitor say", async () => {
  const serviceMonitor = find("ServiceMonitor");
  const podMonitor = find("PodMonitor");
  const service = find("Service", `${kRelease}-phalanx`);
  const endpoint = serviceMonitor.spec.endpoints[0];
  const servicePort = service.spec.ports.find((p) => p.name === endpoint.port);
  const coordinatorPort = portOf(find("Deployment").spec.template.spec, servicePort.targetPort);
  const secret = find("Secret", endpoint.authorization.credentials.name);
  const keyFile = join(scratch, "prometheus-api-key");
  writeFileSync(keyFile, secret.stringData?.[endpoint.authorization.credentials.key] ??
                         Buffer.from(secret.data[endpoint.authorization.credentials.key], "base64"));
  const podEndpoint = podMonitor.spec.podMetricsEndpoints[0];
  const workers = statefulSetPods(find("StatefulSet"));
  const workerPort = portOf(workers[0].spec, podEndpoint.port);
  const config = { global: { scrape_interval: "1s" }, scrape_configs: [
    { job_name: "coordinator", metrics_path: endpoint.path, authorization: { type: "Bearer", credentials_file: keyFile },
      static_configs: [{ targets: [`${podIp(service.metadata.name)}:${coordinatorPort}`] }] },
    { job_name: "workers", metrics_path: podEndpoint.path,
      static_configs: [{ targets: workers.map((w) => `${podIp(w.metadata.name)}:${workerPort}`) }] },
  ] };
  writeFileSync(join(scratch, "prometheus.yml"), YAML.stringify(config));
  const port = await freePort();
  const server = spawn("prometheus", [`--config.file=${join(scratch, "prometheus.yml")}`,
                                      `--storage.tsdb.path=${join(scratch, "tsdb")}`,
                                      `--web.listen-address=127.0.0.1:${port}`], { stdio: "ignore" });
  try {
    const query = async (promql) => {
      const reply = await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`)).json();
      return reply.data.result.length === 1 ? Number(reply.data.result[0].value[1]) : NaN;
    };
    await waitFor("3 targets up, 2 workers loaded, requests counted", 60, async () =>
      (await query("count(up == 1)")) === 3 && (await query("sum(phalanx_worker_loaded)")) === 2 &&
      (await query("sum(phalanx_requests_total)")) >= 3);
  } finally {
    server.kill();
  }
});

function freePort() {
  return new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}
