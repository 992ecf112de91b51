// docker-compose.yml and deploy/kubernetes/ describe the cluster `lockstep up --tls` starts with its
// other flags at their defaults; no Docker engine or Kubernetes runs here, so this checks the files
// against upTopology(defaults and --tls), the function lockstep up runs.
//
// What is compared, per process (the control-plane member and every node):
// - that it exists, once, and runs the same subcommand (`control` or `node`);
// - the same flags, by name and in order;
// - the same values of every flag except these, which differ by design:
//   - --data: /data, a volume (compose) or a volume claim (Kubernetes), mounted there;
//   - --host: the name other containers reach the process by (it binds and announces it), the
//     service's name and hostname in compose, the pod's FQDN (`hostname -f`) in Kubernetes;
//   - --control: the control service's name and its HTTP port, not lockstep up's host;
//   - --tls-dir: /tls, where the certificates are (lockstep up: <data>/tls);
//   - --http and --grpc in Kubernetes: one port pair per StatefulSet, the declared container
//     ports, as every pod has its own address. Compose keeps lockstep up's ports, equal, and
//     publishes each HTTP port on the same host port, so what lockstep up prints works there.
// In Kubernetes the flags are the ones the container's shell wrapper really passes: it is run
// with sh for every ordinal of each StatefulSet, with `node` and `hostname` replaced by stubs
// that print what they were given.
// And the deploy: the same app directory, deploy regions and voter count (compose's `deploy`
// service, the Kubernetes Job), sent to the control service. And the certificates: compose's
// one-shot `certs` issues one per process id for every service name, before any process starts;
// in Kubernetes each pod's init container issues its own, for its id and FQDN, from the CA Secret.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseUpFlags, upTopology, type UpProcess } from '../../src/cli/up-topology.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const topology = upTopology(parseUpFlags({ tls: true }));
const processes: readonly UpProcess[] = [topology.control, ...topology.nodes];
/** Flags whose values differ by design (see the header). */
const placeFlags = new Set(['--data', '--host', '--control', '--auth-dir', '--token-file', '--tls-dir']);
const portFlags = new Set(['--http', '--grpc']);

type Yaml = Record<string, any>;

/** The services a compose service depends on, from the short (list) or the long (map) form. */
function dependencies(service: Yaml): Map<string, string> {
  const dependsOn = (service.depends_on ?? []) as string[] | Record<string, { condition?: string }>;
  if (Array.isArray(dependsOn)) return new Map(dependsOn.map((name) => [name, 'service_started']));
  return new Map(Object.entries(dependsOn).map(([name, entry]) => [name, entry.condition ?? 'service_started']));
}

/** `--name value` pairs, in order; every flag of these commands takes a value. */
function flags(args: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i] as string;
    expect(name, `a flag at position ${i} of ${args.join(' ')}`).toMatch(/^--[a-z-]+$/);
    expect(args[i + 1], `the value of ${name} in ${args.join(' ')}`).toBeDefined();
    pairs.push([name, args[i + 1] as string]);
  }
  return pairs;
}

/** The checks shared by compose and Kubernetes; returns the flags that differ by design. */
function expectSameFlags(where: string, expected: UpProcess, command: string, args: readonly string[], comparePorts: boolean): Map<string, string> {
  expect(command, `${where}: the subcommand`).toBe(expected.command);
  const actual = flags(args);
  const wanted = flags(expected.args);
  expect(actual.map(([name]) => name), `${where}: the flags, in order`).toEqual(wanted.map(([name]) => name));
  const differing = new Map<string, string>();
  for (const [index, [name, value]] of actual.entries()) {
    if (placeFlags.has(name) || (!comparePorts && portFlags.has(name))) differing.set(name, value);
    else expect(value, `${where}: ${name}`).toBe(wanted[index]?.[1]);
  }
  return differing;
}

function controlHttpPort(): string {
  return String(topology.control.httpPort);
}

describe('docker-compose.yml agrees with lockstep up', () => {
  const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as Yaml;
  const services = compose.services as Record<string, Yaml>;
  /** The compose service of a process: `control` for the control plane, the node's id otherwise. */
  const serviceName = (child: UpProcess): string => (child.command === 'control' ? 'control' : child.id);

  it('has one service per process of lockstep up, and the one-shot certs and deploy', () => {
    expect(Object.keys(services).sort()).toEqual([...processes.map(serviceName), 'certs', 'deploy'].sort());
  });

  it('issues a certificate for every process id, for every service name, before any process starts', () => {
    const certs = services.certs as Yaml;
    expect(certs.restart).toBe('no');
    expect(certs.volumes).toEqual(['tls:/tls']);
    const [command, ...args] = certs.command as string[];
    expect(command).toBe('certs');
    const given = new Map(flags(args));
    expect(given.get('--out')).toBe('/tls');
    expect(given.get('--ids')?.split(',')).toEqual(processes.map((child) => child.id));
    expect(given.get('--hosts')?.split(',')).toEqual(expect.arrayContaining(processes.map(serviceName)));
    for (const child of processes) expect(dependencies(services[serviceName(child)] as Yaml).get('certs'), `${child.id} waits for certs`).toBe('service_completed_successfully');
  });

  it.each(processes.map((child) => [child.id, child] as const))('runs %s with the flags lockstep up gives it', (_id, child) => {
    const name = serviceName(child);
    const service = services[name] as Yaml;
    expect(service.build, `${name} builds deploy/Dockerfile`).toEqual({ context: '.', dockerfile: 'deploy/Dockerfile' });
    const [command, ...args] = service.command as string[];
    const differing = expectSameFlags(`compose service ${name}`, child, command as string, args, true);
    expect(differing.get('--host'), `${name}: --host is the service's name`).toBe(name);
    expect(service.hostname, `${name}: its hostname`).toBe(name);
    expect(differing.get('--data')).toBe('/data');
    expect(differing.get('--tls-dir')).toBe('/tls');
    if (child.command === 'node') {
      expect(differing.get('--control'), `${name}: --control`).toBe(`control:${controlHttpPort()}`);
      expect(dependencies(service).has('control')).toBe(true);
      expect(differing.get('--token-file'), `${name}: the system token from the shared volume`).toBe('/auth/system.token');
      expect(service.volumes).toEqual([`${name}:/data`, 'auth:/auth:ro', 'tls:/tls:ro']);
    } else {
      expect(differing.get('--auth-dir'), 'the control plane keeps its credentials in the shared volume').toBe('/auth');
      expect(service.volumes).toEqual([`${name}:/data`, 'auth:/auth', 'tls:/tls:ro']);
    }
    expect(service.ports, `${name} publishes its HTTP port as lockstep up's`).toEqual([`${child.httpPort}:${child.httpPort}`]);
  });

  it('deploys the same app to the same regions with the same voters', () => {
    const deploy = services.deploy as Yaml;
    expect(deploy.entrypoint).toEqual(['node', 'dist/src/cli/clusterctl.js']);
    expect(deploy.command).toEqual(['deploy', topology.deploy.appDir, '--regions', topology.deploy.regions.join(','), '--replicas', String(topology.deploy.replicas), '--control', `http://control:${controlHttpPort()}`, '--token-file', '/auth/admin.token']);
    expect(deploy.volumes).toEqual(['auth:/auth:ro']);
    expect([...dependencies(deploy).keys()].sort()).toEqual(processes.map(serviceName).sort());
    expect(deploy.restart).toBe('on-failure');
  });

  it('builds an image whose entrypoint is the lockstep CLI', () => {
    const dockerfile = readFileSync(join(repoRoot, 'deploy', 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "dist\/src\/cli\/lockstep\.js"\]$/m);
  });
});

describe('deploy/kubernetes/ agrees with lockstep up', () => {
  const dir = join(repoRoot, 'deploy', 'kubernetes');
  const files = readdirSync(dir).filter((file) => file.endsWith('.yaml'));
  const documents = files.flatMap((file) => parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((document) => document.toJS() as Yaml)).filter((document) => document !== null);
  const resources = (kind: string): Yaml[] => documents.filter((document) => document.kind === kind);
  const named = (kind: string, name: string): Yaml => {
    const found = resources(kind).filter((resource) => resource.metadata?.name === name);
    expect(found, `one ${kind} ${name}`).toHaveLength(1);
    return found[0] as Yaml;
  };
  const stubs = mkdtempSync(join(tmpdir(), 'lockstep-k8s-stubs-'));
  // `node` prints its arguments one a line; `hostname -f` the pod's FQDN in namespace lockstep;
  // `cp` and `rm` (of the init container's CA files) do nothing.
  writeFileSync(join(stubs, 'node'), '#!/bin/sh\nfor arg in "$@"; do printf \'%s\\n\' "$arg"; done\n');
  writeFileSync(join(stubs, 'hostname'), '#!/bin/sh\n[ "$1" = -f ] && echo "$HOSTNAME.$STUB_SUBDOMAIN.lockstep.svc.cluster.local" || echo "$HOSTNAME"\n');
  for (const stub of ['cp', 'rm']) writeFileSync(join(stubs, stub), '#!/bin/sh\nexit 0\n');
  for (const stub of ['node', 'hostname', 'cp', 'rm']) chmodSync(join(stubs, stub), 0o755);
  afterAll(() => rmSync(stubs, { recursive: true, force: true }));

  /** What the container (or the init container) of `set`'s pod with this ordinal runs: its
   *  arguments after `node`. */
  function podArgs(set: Yaml, ordinal: number, which: 'containers' | 'initContainers' = 'containers'): string[] {
    const container = set.spec.template.spec[which][0] as Yaml;
    expect(container.command).toEqual(['sh', '-c']);
    const run = spawnSync('/bin/sh', ['-c', container.args[0] as string], {
      env: { PATH: `${stubs}:/usr/bin:/bin`, HOSTNAME: `${set.metadata.name as string}-${ordinal}`, STUB_SUBDOMAIN: set.spec.serviceName as string },
      encoding: 'utf8',
    });
    expect(run.status, `the wrapper of ${set.metadata.name as string}-${ordinal}: ${run.stderr}`).toBe(0);
    return run.stdout.trimEnd().split('\n');
  }

  function containerPort(set: Yaml, name: string): string {
    const ports = set.spec.template.spec.containers[0].ports as { name: string; containerPort: number }[];
    return String(ports.find((port) => port.name === name)?.containerPort);
  }

  /** The StatefulSet's Service is headless, selects its pods, and offers the container's ports. */
  function expectHeadlessService(set: Yaml): Yaml {
    const service = named('Service', set.spec.serviceName as string);
    expect(service.spec.clusterIP).toBe('None');
    expect(service.spec.publishNotReadyAddresses).toBe(true);
    expect(set.spec.template.metadata.labels).toMatchObject(service.spec.selector as Yaml);
    expect(set.spec.selector.matchLabels).toEqual(service.spec.selector);
    const ports = (service.spec.ports as { name: string; port: number }[]).map((port) => `${port.name}:${port.port}`);
    expect(ports.sort()).toEqual(['grpc', 'http'].map((name) => `${name}:${containerPort(set, name)}`).sort());
    const mounts = set.spec.template.spec.containers[0].volumeMounts as { name: string; mountPath: string }[];
    expect(mounts).toEqual([
      { name: 'data', mountPath: '/data' },
      { name: 'auth', mountPath: '/auth', readOnly: true },
      { name: 'tls', mountPath: '/tls', readOnly: true },
    ]);
    const auth = (set.spec.template.spec.volumes as Yaml[]).find((volume) => volume.name === 'auth');
    expect(auth?.secret?.secretName, 'the credentials come from the Secret lockstep-auth').toBe('lockstep-auth');
    expect((set.spec.volumeClaimTemplates as Yaml[]).map((claim) => claim.metadata.name)).toEqual(['data']);
    return service;
  }

  const controlSet = named('StatefulSet', 'control');
  const controlAddress = (): string => `${controlSet.metadata.name as string}-0.${controlSet.spec.serviceName as string}:${containerPort(controlSet, 'http')}`;

  function expectPod(set: Yaml, ordinal: number, expected: UpProcess): void {
    const where = `pod ${set.metadata.name as string}-${ordinal}`;
    const [script, command, ...args] = podArgs(set, ordinal);
    expect(script, `${where} runs the lockstep CLI`).toBe('dist/src/cli/lockstep.js');
    const differing = expectSameFlags(where, expected, command as string, args, false);
    expect(differing.get('--data')).toBe('/data');
    expect(differing.get('--host'), `${where}: --host is the pod's FQDN`).toBe(`${set.metadata.name as string}-${ordinal}.${set.spec.serviceName as string}.lockstep.svc.cluster.local`);
    expect(differing.get('--http')).toBe(containerPort(set, 'http'));
    expect(differing.get('--grpc')).toBe(containerPort(set, 'grpc'));
    if (expected.command === 'node') {
      expect(differing.get('--control'), `${where}: --control`).toBe(controlAddress());
      expect(differing.get('--token-file')).toBe('/auth/system.token');
    } else {
      expect(differing.get('--auth-dir')).toBe('/auth');
    }
    expect(differing.get('--tls-dir')).toBe('/tls');
    expectPodCertificate(set, ordinal, expected);
  }

  /** The init container issues the pod's certificate into /tls (in memory), for its id and FQDN,
   *  from the CA Secret, which only it mounts. */
  function expectPodCertificate(set: Yaml, ordinal: number, expected: UpProcess): void {
    const where = `the init container of ${set.metadata.name as string}-${ordinal}`;
    const [script, command, ...args] = podArgs(set, ordinal, 'initContainers');
    expect(script, where).toBe('dist/src/cli/lockstep.js');
    expect(command, where).toBe('certs');
    expect(flags(args), where).toEqual([
      ['--out', '/tls'],
      ['--ids', expected.id],
      ['--hosts', `${set.metadata.name as string}-${ordinal}.${set.spec.serviceName as string}.lockstep.svc.cluster.local`],
    ]);
    const pod = set.spec.template.spec as Yaml;
    expect(pod.initContainers[0].volumeMounts).toEqual([{ name: 'ca', mountPath: '/ca', readOnly: true }, { name: 'tls', mountPath: '/tls' }]);
    expect(pod.volumes.filter((volume: Yaml) => volume.name !== 'auth')).toEqual([
      { name: 'tls', emptyDir: { medium: 'Memory' } },
      { name: 'ca', secret: { secretName: 'lockstep-ca', defaultMode: 0o400 } },
    ]);
  }

  it('lists every file in the kustomization, into one namespace, and makes the CA Secret from lockstep certs\' files', () => {
    const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Yaml;
    expect([...(kustomization.resources as string[])].sort()).toEqual(files.filter((file) => file !== 'kustomization.yaml').sort());
    expect(named('Namespace', kustomization.namespace as string)).toBeDefined();
    expect(kustomization.secretGenerator).toEqual([{ name: 'lockstep-ca', files: ['tls/ca.pem', 'tls/ca-key.pem'] }]);
  });

  it('runs one control-plane member with the flags lockstep up gives it', () => {
    expect(controlSet.spec.replicas).toBe(1);
    expectHeadlessService(controlSet);
    expectPod(controlSet, 0, topology.control);
  });

  it('has a StatefulSet per region with its node count, and no other', () => {
    const regions = [...new Set(topology.nodes.map((node) => node.region as string))];
    const nodeSets = resources('StatefulSet').filter((set) => set.metadata.name !== 'control');
    expect(nodeSets.map((set) => set.metadata.name as string).sort()).toEqual([...regions].sort());
    for (const region of regions) {
      expect(named('StatefulSet', region).spec.replicas, `replicas of ${region}`).toBe(topology.nodes.filter((node) => node.region === region).length);
    }
  });

  it.each(topology.nodes.map((node) => [node.id, node] as const))('runs %s with the flags lockstep up gives it', (id, node) => {
    const set = named('StatefulSet', node.region as string);
    expectHeadlessService(set);
    const ordinal = topology.nodes.filter((other) => other.region === node.region).indexOf(node);
    expect(ordinal, `${id} in its region`).toBeGreaterThanOrEqual(0);
    expectPod(set, ordinal, node);
  });

  it('deploys the same app to the same regions with the same voters, in a Job', () => {
    const job = named('Job', 'deploy-shop');
    const container = job.spec.template.spec.containers[0] as Yaml;
    expect(container.command).toEqual(['node', 'dist/src/cli/clusterctl.js']);
    expect(container.args).toEqual(['deploy', topology.deploy.appDir, '--regions', topology.deploy.regions.join(','), '--replicas', String(topology.deploy.replicas), '--control', `http://${controlAddress()}`, '--token-file', '/auth/admin.token']);
    expect(job.spec.template.spec.restartPolicy).toBe('OnFailure');
  });
});
