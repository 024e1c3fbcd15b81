// The pods Kubernetes' controllers and kubelet would make from the chart's rendered objects, as Pod YAML that
// `podman kube play` runs. There is no API server here, so this does the controllers' part: a StatefulSet's
// ordinals become pods <name>-<i> with hostname and subdomain set, a Deployment's and a Job's template one pod
// each. Everything else (command, args, env, resources, probes, security contexts, volumes, names) is the chart's
// own, with four stand-ins for what podman 4.3 does differently from a kubelet, each named:
//   - `$(VAR)` references in command and args are expanded from the container's env, as the kubelet does
//     (podman leaves them literal), with resourceFieldRef and fieldRef values resolved the kubelet's way;
//   - a `secret` volume becomes a hostPath directory holding the Secret's keys as files with the volume's mode
//     (podman 4.3.1's `kube play` crashes on secret volumes), owned by the pod's user;
//   - an `emptyDir` becomes a hostPath directory of the pod's own, world-writable as the kubelet makes it (on
//     /dev/shm for medium Memory): podman 4.3 makes one root-owned named volume per volume *name*, shared by
//     every pod that uses the name, so two workers would share /dev/shm and UCX's files in it;
//   - `ports` lists are dropped after named probe ports are resolved to numbers, as the kubelet resolves them:
//     podman 4.3 publishes every containerPort on the host, so two pods with one port collide, where in
//     Kubernetes the list only documents what the container listens on.
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// A StatefulSet's pods, as its controller names them.
export function statefulSetPods(set) {
  const pods = [];
  for (let ordinal = 0; ordinal < set.spec.replicas; ++ordinal) {
    const name = `${set.metadata.name}-${ordinal}`;
    const labels = { ...set.spec.template.metadata.labels, "statefulset.kubernetes.io/pod-name": name,
                     "apps.kubernetes.io/pod-index": String(ordinal) };
    pods.push(pod(name, labels, { ...set.spec.template.spec, hostname: name, subdomain: set.spec.serviceName }));
  }
  return pods;
}

// A Deployment's or a Job's one pod under the name given (a controller would add a random suffix).
export function templatePod(owner, name) {
  return pod(name, owner.spec.template.metadata?.labels ?? {}, owner.spec.template.spec);
}

// A bare Pod object (a helm test hook) as it is.
export function barePod(object) {
  return pod(object.metadata.name, object.metadata.labels ?? {}, object.spec);
}

function pod(name, labels, spec) {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, labels }, spec: structuredClone(spec) };
}

// The kubelet's part (see the top). `dirs`: {disk, memory} roots for the pod's volumes (memory on a tmpfs).
export function asKubeletWould(podObject, secrets, dirs) {
  const spec = podObject.spec;
  for (const volume of spec.volumes ?? []) {
    if (volume.secret) secretAsFiles(volume, podObject, secrets, join(dirs.disk, "secrets"));
    if (volume.emptyDir) emptyDirOfItsOwn(volume, podObject, volume.emptyDir.medium === "Memory" ? dirs.memory : dirs.disk);
  }
  for (const container of spec.containers) {
    expandReferences(container, podObject);
    resolveProbePorts(container);
  }
  return podObject;
}

function secretAsFiles(volume, podObject, secrets, root) {
  const secret = secrets.get(volume.secret.secretName);
  if (!secret) throw new Error(`pod ${podObject.metadata.name}: no Secret ${volume.secret.secretName} rendered`);
  const user = podObject.spec.securityContext?.runAsUser ?? 0;
  const group = podObject.spec.securityContext?.runAsGroup ?? 0;
  const dir = join(root, podObject.metadata.name, volume.name);
  mkdirSync(dir, { recursive: true });
  for (const [key, value] of Object.entries(secretData(secret))) {
    writeFileSync(join(dir, key), value);
    chownSync(join(dir, key), user, group);
    chmodSync(join(dir, key), volume.secret.defaultMode ?? 0o644);
  }
  chownSync(dir, user, group);
  volume.hostPath = { path: dir, type: "Directory" };
  delete volume.secret;
}

function emptyDirOfItsOwn(volume, podObject, root) {
  const dir = join(root, "emptydir", podObject.metadata.name, volume.name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  volume.hostPath = { path: dir, type: "Directory" };
  delete volume.emptyDir;
}

function resolveProbePorts(container) {
  const numbers = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]));
  for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    const action = container[probe]?.httpGet ?? container[probe]?.tcpSocket;
    if (action && typeof action.port === "string") {
      if (!numbers.has(action.port)) throw new Error(`${container.name}: ${probe} names no port ${action.port}`);
      action.port = numbers.get(action.port);
    }
  }
  delete container.ports;
}

function secretData(secret) {
  const data = {};
  for (const [key, value] of Object.entries(secret.data ?? {})) data[key] = Buffer.from(value, "base64");
  for (const [key, value] of Object.entries(secret.stringData ?? {})) data[key] = Buffer.from(value);
  return data;
}

// `$(NAME)` in command and args from the container's env, `$$(NAME)` left as `$(NAME)`, unknown names as they are.
function expandReferences(container, podObject) {
  const values = new Map();
  for (const variable of container.env ?? []) values.set(variable.name, envValue(variable, container, podObject));
  const expand = (text) => String(text).replace(/\$?\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name) =>
    whole.startsWith("$$") ? whole.slice(1) : (values.has(name) ? values.get(name) : whole));
  if (container.command) container.command = container.command.map(expand);
  if (container.args) container.args = container.args.map(expand);
}

function envValue(variable, container, podObject) {
  if (variable.value !== undefined) return variable.value;
  const field = variable.valueFrom?.fieldRef?.fieldPath;
  if (field === "metadata.name") return podObject.metadata.name;
  const resource = variable.valueFrom?.resourceFieldRef;
  if (resource) {
    const [kind, name] = resource.resource.split(".");
    const quantity = container.resources?.[kind === "limits" ? "limits" : "requests"]?.[name];
    if (quantity === undefined) throw new Error(`${container.name}: no ${resource.resource} for ${variable.name}`);
    // The kubelet rounds up to a whole multiple of the divisor.
    return String(Math.ceil(cpuOrBytes(quantity) / cpuOrBytes(resource.divisor ?? "1")));
  }
  throw new Error(`${container.name}: env ${variable.name} takes its value from a source this stand-in lacks`);
}

function cpuOrBytes(quantity) {
  const text = String(quantity);
  const units = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
  const match = /^([0-9.]+)([a-zA-Z]*)$/.exec(text);
  if (!match || (match[2] && !(match[2] in units))) throw new Error(`quantity '${text}' is not understood here`);
  return Number(match[1]) * (match[2] ? units[match[2]] : 1);
}
