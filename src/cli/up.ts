// `lockstep up`: a local cluster as processes. One control-plane member and the nodes of
// upTopology, each a child running the compiled CLI with its output in <data>/logs/<id>.log;
// then the app deployed through the control API as clusterctl deploys it, and, once it has
// converged, every URL and a few commands to try. SIGINT or SIGTERM stops every child (nodes
// first, then the control plane; SIGTERM, SIGKILL after a grace) and exits 0; a child that
// dies on its own stops the rest and exits 1. The same data directory started again keeps its
// nodes and their data, and the deploy is then a no-op.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { DataDirLockedError, lockDataDir, type DataDirLock } from '../storage/data-dir-lock.js';
import { deployRequest, followDeploy, type DeployRequest } from './app-deploy.js';
import { CertsError, writeCerts } from './certs.js';
import { ChildProcesses, logTail, type ChildSpec } from './child-processes.js';
import { ControlClient, ExitError, sleep, type Json } from './control-client.js';
import { table } from './text-table.js';
import { ensureTokenFile } from './auth-files.js';
import { authDirOf, upTopology, type UpOptions, type UpProcess, type UpTopology } from './up-topology.js';

/** Longest the control plane may take to answer with a leader. */
const controlReadyTimeoutMs = 30_000;
/** Longest the nodes may take to serve and be heard by the control plane. */
const nodesUpTimeoutMs = 60_000;
/** Longest the app may take to converge on its voters and version. */
const convergeTimeoutMs = 120_000;
/** How long a child has between SIGTERM and SIGKILL. */
const stopGraceMs = 10_000;
/** Deadline of one readiness probe of a node. */
const probeTimeoutMs = 2_000;
const pollIntervalMs = 250;
/** The record of the flags a data directory was made with. */
const topologyFileName = 'up.json';
/** Validity of the node certificates --tls issues (they are issued again at every start). */
const tlsCertificateDays = 365;

const cliDir = dirname(fileURLToPath(import.meta.url));

export async function runUp(options: UpOptions): Promise<void> {
  const topology = upTopology(options);
  const processes = [topology.control, ...topology.nodes];
  const logDir = join(options.dataDir, 'logs');
  const logPath = (id: string): string => join(logDir, `${id}.log`);
  const startedMs = Date.now();
  let lock: DataDirLock | undefined;
  let children: ChildProcesses | undefined;
  let ending = false;
  const dataDirIsNew = !existsSync(options.dataDir);

  /** Stops whatever runs (nodes first: they would only complain of a missing control plane)
   *  and ends this process. */
  const end = async (code: number, message?: string): Promise<never> => {
    if (!ending) {
      ending = true;
      if (message !== undefined) process.stderr.write(`lockstep up: ${message}\n`);
      if (children !== undefined) {
        process.stdout.write(`lockstep up: stopping ${processes.length} processes\n`);
        await children.stop(topology.nodes.map((node) => node.id), stopGraceMs);
        await children.stop([topology.control.id], stopGraceMs);
        process.stdout.write('lockstep up: stopped\n');
      }
      lock?.release();
      // Refused before anything started: leave no empty directory behind.
      if (children === undefined && dataDirIsNew && lock !== undefined) rmSync(options.dataDir, { recursive: true, force: true });
      process.exit(code);
    }
    return new Promise<never>(() => undefined);
  };

  try {
    const deploy = await readApp(topology);
    lock = lockData(options);
    const recordTopology = checkSameTopology(options);
    await checkPortsFree(options.host, processes);
    recordTopology();
    mkdirSync(logDir, { recursive: true });
    // Secured: the credentials are made here, before anything starts, so that this process can
    // talk to the control plane as its admin (the control plane reads the same files).
    let adminToken: string | undefined;
    if (!options.open) {
      mkdirSync(authDirOf(options), { recursive: true, mode: 0o700 });
      ensureTokenFile(join(authDirOf(options), 'system.token'));
      adminToken = ensureTokenFile(join(authDirOf(options), 'admin.token'));
    }
    if (options.tlsDir !== undefined) await makeCertificates(options.tlsDir, options.host, processes);

    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void end(0));
    children = new ChildProcesses(join(cliDir, 'lockstep.js'), (spec, how, logStartBytes) => {
      const tail = logTail(spec.logPath, logStartBytes);
      void end(1, `${spec.id} stopped unexpectedly (${how}); its log is ${spec.logPath}${tail === '' ? '' : `, which ends:\n${indent(tail)}`}\nstopping the rest`);
    });
    const childSpec = (child: UpProcess): ChildSpec => ({ id: child.id, args: [child.command, ...child.args], logPath: logPath(child.id) });

    process.stdout.write(`lockstep up: a control plane and ${topology.nodes.length} nodes on ${options.host}; data in ${options.dataDir}/<id>/, logs in ${logDir}/<id>.log\n`);
    process.stdout.write(
      options.open
        ? 'lockstep up: OPEN (development mode, --open): no authentication, every caller may do everything\n'
        : `lockstep up: secured: every request needs a token; the admin's is in ${join(authDirOf(options), 'admin.token')}\n`,
    );
    const pids = new Map<string, number>();
    pids.set(topology.control.id, children.start(childSpec(topology.control)));
    const client = new ControlClient(topology.control.url, adminToken);
    const logsSayWhy = `the logs in ${logDir} say why`;
    await waitFor('the control plane to answer', controlReadyTimeoutMs, logsSayWhy, async () => {
      await client.expect('GET', '/v1/nodes');
      return true;
    });
    for (const node of topology.nodes) pids.set(node.id, children.start(childSpec(node)));
    process.stdout.write(`  control plane ${topology.control.url}/ up; starting ${topology.nodes.map((node) => node.id).join(', ')}\n`);
    await waitFor(`nodes ${topology.nodes.map((node) => node.id).join(', ')} to serve and register`, nodesUpTimeoutMs, logsSayWhy, () => nodesUp(client, topology, adminToken));
    process.stdout.write(`  ${topology.nodes.length} nodes up; deploying ${options.appDir} to ${options.deployRegions.join(',')} (${topology.deploy.replicas} voters)\n`);
    const status = await deployApp(client, deploy, logsSayWhy);
    const nodes = ((await client.expect('GET', '/v1/nodes')).nodes ?? []) as Json[];
    process.stdout.write(summary(options, topology, deploy, status, nodes, pids, (Date.now() - startedMs) / 1000));
  } catch (error) {
    if (ending) return;
    const code = error instanceof ExitError ? error.code : 1;
    await end(code, error instanceof Error ? error.message : String(error));
  }
}

/** The app is read before anything starts: a directory without an app is a bad flag. */
async function readApp(topology: UpTopology): Promise<DeployRequest> {
  const { appDir, regions, replicas } = topology.deploy;
  try {
    return await deployRequest(appDir, { regions, replicas, allowBreaking: false });
  } catch (error) {
    throw new ExitError(2, `--app: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** One `lockstep up` per data directory; each child also locks its own directory below it. */
function lockData(options: UpOptions): DataDirLock {
  try {
    return lockDataDir(resolve(options.dataDir));
  } catch (error) {
    if (error instanceof DataDirLockedError) throw new ExitError(1, `${options.dataDir} is in use by process ${error.ownerPid} (another lockstep up?); stop it, or give another --data`);
    throw error;
  }
}

/** A data directory holds the nodes of one topology: started again with other regions, host or
 *  ports, nodes would come back under other addresses or not at all, so that is refused.
 *  Returns what records the topology of a new directory, once nothing else stands in the way. */
function checkSameTopology(options: UpOptions): () => void {
  const path = join(options.dataDir, topologyFileName);
  const current = { regions: options.regions.map((size) => `${size.region}:${size.nodes}`).join(','), host: options.host, basePort: options.basePort };
  if (existsSync(path)) {
    const before = JSON.parse(readFileSync(path, 'utf8')) as typeof current;
    const differs = (['regions', 'host', 'basePort'] as const).filter((key) => before[key] !== current[key]);
    if (differs.length > 0) {
      const flags = { regions: '--regions', host: '--host', basePort: '--base-port' } as const;
      throw new ExitError(
        2,
        `${options.dataDir} holds a cluster started with ${differs.map((key) => `${flags[key]} ${String(before[key])}`).join(' ')}, not ${differs.map((key) => `${flags[key]} ${String(current[key])}`).join(' ')}; ` +
          `start it with the same flags, or give another --data (or remove ${options.dataDir} to start afresh)`,
      );
    }
    return () => undefined;
  }
  return () => writeFileSync(path, `${JSON.stringify(current, null, 2)}\n`);
}

/** --tls: a certificate for every process, from the data directory's CA (made the first time). */
async function makeCertificates(tlsDir: string, host: string, processes: readonly UpProcess[]): Promise<void> {
  try {
    const outcome = await writeCerts({ outDir: tlsDir, ids: processes.map((child) => child.id), hosts: [host], days: tlsCertificateDays });
    process.stdout.write(`lockstep up: mutual TLS between all processes; certificates in ${tlsDir}/ (${outcome.caCreated ? 'a new' : 'the same'} development CA)\n`);
  } catch (error) {
    if (error instanceof CertsError) throw new ExitError(1, `--tls: ${error.message}`);
    throw error;
  }
}

/** Every port is tried before anything starts, so a clash names its port instead of surfacing
 *  as a child that died. */
async function checkPortsFree(host: string, processes: readonly UpProcess[]): Promise<void> {
  for (const child of processes) {
    for (const [port, kind] of [[child.httpPort, 'HTTP'], [child.grpcPort, 'gRPC']] as const) {
      const problem = await new Promise<string | undefined>((resolveTry) => {
        const server = createServer();
        server.once('error', (error: NodeJS.ErrnoException) => resolveTry(error.code ?? error.message));
        server.listen({ port, host, exclusive: true }, () => server.close(() => resolveTry(undefined)));
      });
      if (problem === 'EADDRINUSE') throw new ExitError(1, `port ${port} on ${host} (the ${kind} port of ${child.id}) is in use; stop what holds it or choose another --base-port`);
      if (problem !== undefined) throw new ExitError(1, `cannot listen on ${host}:${port} (the ${kind} port of ${child.id}): ${problem}`);
    }
  }
}

/** Polls `probe` until it returns a value; an ExitError(3) (the control plane not answering
 *  yet) counts as not yet, anything else fails. */
async function waitFor<T>(what: string, timeoutMs: number, hint: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (!(error instanceof ExitError && error.code === 3) || Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new ExitError(1, `timed out after ${timeoutMs / 1000} s waiting for ${what}; ${hint}`);
    await sleep(pollIntervalMs);
  }
}

/** Up means: the node serves its own HTTP, and the control plane lists it, up, at this run's
 *  address (after a restart it lists every node from before until they are heard again). */
async function nodesUp(client: ControlClient, topology: UpTopology, adminToken: string | undefined): Promise<true | undefined> {
  const listed = ((await client.expect('GET', '/v1/nodes')).nodes ?? []) as Json[];
  for (const node of topology.nodes) {
    const entry = listed.find((candidate) => candidate.id === node.id);
    if (entry?.httpUrl !== node.url || (entry.state !== 'up' && entry.state !== 'draining' && entry.state !== 'drained')) return undefined;
  }
  const serving = await Promise.all(
    topology.nodes.map(async (node) => {
      try {
        const answer = await request(`${node.url}/_status`, { headersTimeout: probeTimeoutMs, bodyTimeout: probeTimeoutMs, ...(adminToken === undefined ? {} : { headers: { authorization: `Bearer ${adminToken}` } }) });
        await answer.body.dump();
        return answer.statusCode === 200;
      } catch {
        return false;
      }
    }),
  );
  return serving.every(Boolean) ? true : undefined;
}

async function deployApp(client: ControlClient, deploy: DeployRequest, hint: string): Promise<Json> {
  const answer = await client.call('POST', `${deploy.appPath}/deploy`, deploy.body);
  if (answer.status >= 300) throw new ExitError(1, `the control plane refused the deploy of ${deploy.name}: ${String(answer.body.detail ?? answer.body.title ?? answer.status)}`);
  process.stdout.write(`  ${deploy.name}: version ${String(answer.body.version)}, voters ${list((answer.body.target as Json).voters)}, learners ${list((answer.body.target as Json).learners)}\n`);
  const outcome = await followDeploy(client, deploy, Number(answer.body.index), convergeTimeoutMs, (step) => {
    process.stdout.write(`    ${String(step.outcome).padEnd(7)}  ${String(step.detail)}\n`);
  });
  if (outcome.kind === 'refused') throw new ExitError(1, `version ${outcome.version} of ${deploy.name} was refused by the app: ${outcome.reason}`);
  if (outcome.kind === 'timeout') throw new ExitError(1, `${deploy.name} did not converge within ${convergeTimeoutMs / 1000} s; ${hint}`);
  return outcome.status;
}

const list = (value: unknown): string => (Array.isArray(value) && value.length > 0 ? value.join(',') : '-');
const indent = (text: string): string => text.replace(/^/gm, '    ');

/** Everything a user needs to try the cluster. */
function summary(options: UpOptions, topology: UpTopology, deploy: DeployRequest, status: Json, nodes: readonly Json[], pids: ReadonlyMap<string, number>, seconds: number): string {
  const voters = (status.voters ?? []) as string[];
  const learners = (status.learners ?? []) as string[];
  const roleOf = (id: string): string => (voters.includes(id) ? 'voter' : learners.includes(id) ? 'learner' : '-');
  const app = deploy.name;
  const rows = topology.nodes.map((node) => {
    const state = String(nodes.find((entry) => entry.id === node.id)?.state ?? '?');
    return [node.id, node.region ?? '', node.zone ?? '', node.url + '/', state, roleOf(node.id), String(pids.get(node.id) ?? '')];
  });
  // A node that holds the app, preferring a voter of the first deploy region, and one that
  // holds nothing (it forwards); the first node of the list if there is none.
  const holder = topology.nodes.find((node) => node.region === options.deployRegions[0] && voters.includes(node.id)) ?? topology.nodes.find((node) => voters.includes(node.id)) ?? (topology.nodes[0] as UpProcess);
  const forwarder = topology.nodes.find((node) => roleOf(node.id) === '-');
  const ctl = clusterctlCommand();
  const record = app === 'shop' ? { path: 'Product/p1', body: '{"name":"Lamp","price":20,"stock":5,"category":"home"}' } : { path: '<Table>/<id>', body: '<a record as JSON>' };
  const holderUrl = holder.url;
  const auth = options.open ? '' : ` -H "Authorization: Bearer $LOCKSTEP_TOKEN"`;
  const tries = [
    `export LOCKSTEP_CONTROL=${topology.control.url}`,
    ...(options.open ? [] : [`export LOCKSTEP_TOKEN=$(cat ${join(authDirOf(options), 'admin.token')})    # the admin's token; clusterctl and curl below use it`]),
    `curl -X PUT ${holderUrl}/${app}/${record.path}${auth} -H 'content-type: application/json' -d '${record.body}'`,
    `curl -i ${holderUrl}/${app}/${record.path}${auth}`,
    ...(forwarder === undefined ? [] : [`curl -i ${forwarder.url}/${app}/${record.path}${auth}    # ${forwarder.id} (${forwarder.region ?? ''}) holds no replica: X-Lockstep-Served-By names the node that answered`]),
    `${ctl} nodes`,
    `${ctl} status ${app}`,
    `${ctl} drain ${holder.id}    # its replica moves to another node; ${ctl} undrain ${holder.id} lets it hold one again`,
  ];
  return [
    '',
    `lockstep up: ${app} (version ${String(status.activeVersion)}) converged on ${voters.length} voters and ${learners.length} learner(s) in ${options.deployRegions.join(',')}, ${seconds.toFixed(1)} s after start`,
    '',
    `control plane  ${topology.control.url}/  (member ${topology.control.id}, pid ${String(pids.get(topology.control.id) ?? '')})`,
    '',
    table(['NODE', 'REGION', 'ZONE', 'URL', 'STATE', app.toUpperCase(), 'PID'], rows).trimEnd(),
    '',
    `data in ${options.dataDir}/<id>/, each process's output in ${join(options.dataDir, 'logs')}/<id>.log`,
    '',
    'try:',
    ...tries.map((line) => `  ${line}`),
    '',
    `Ctrl-C stops all ${topology.nodes.length + 1} processes; lockstep up with the same --data starts them again on their data.`,
    '',
  ].join('\n');
}

/** `npx clusterctl` finds this package's own bin from its directory; elsewhere, the script. */
function clusterctlCommand(): string {
  const packageRoot = resolve(cliDir, '..', '..', '..');
  const script = join(cliDir, 'clusterctl.js');
  return resolve(process.cwd()) === packageRoot ? 'npx clusterctl' : `node ${script}`;
}
