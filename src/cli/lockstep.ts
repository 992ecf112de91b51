#!/usr/bin/env node
// The `lockstep` command.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultTiming } from '../cluster/node-host.js';
import { TlsMaterialError, loadTlsMaterial, type TlsMaterial } from '../cluster/tls.js';
import { defaultLivenessTiming } from '../control/liveness.js';
import { defaultRolloutTiming } from '../control/rollout.js';
import { defaultAuditSealEveryMs } from '../control/control-plane.js';
import { AuthFileError, controlCredentials, readTokenFile, type ControlCredentials } from './auth-files.js';
import { runControl } from './control.js';
import { issueToken, parseScope } from '../security/tokens.js';
import type { Scope } from '../security/permissions.js';
import { lifetimeMs } from './identity-command.js';
import { runDev } from './dev.js';
import { defaultWanMatrix, parseWanMatrix } from '../cluster/wan.js';
import { certsDefaults, runCerts } from './certs.js';
import { parseControlAddresses, parsePeers, runNode } from './node.js';
import { runUp } from './up.js';
import { UpFlagError, parseUpFlags, upDefaults } from './up-topology.js';

const usage = `usage:
  lockstep up [--regions ${upDefaults.regions}] [--app ${upDefaults.app}] [--deploy-regions ${upDefaults.deployRegions}]
              [--data ${upDefaults.data}] [--host ${upDefaults.host}] [--base-port ${upDefaults.basePort}]
              [--simulate-wan [--wan-matrix ${defaultWanMatrix}]] [--open] [--tls]
      a local cluster as processes: a control plane (HTTP on --base-port, gRPC on the next) and
      region:count nodes per region (ids eu1, eu2, ..., zones eu-a, eu-b, ..., two ports each
      from --base-port + 2 on), then the app deployed to --deploy-regions with 3 voters; prints
      every URL and commands to try; Ctrl-C stops everything; the same --data starts it again;
      --simulate-wan makes the nodes delay traffic between regions by the matrix (one-way ms);
      secured: every request needs a token (the admin's is in <data>/auth/admin.token), unless
      --open (development only: no authentication); --tls runs lockstep certs into <data>/tls and starts every process with --tls-dir there
  lockstep dev <appdir> [--port 9926] [--host 127.0.0.1] [--data <dir>] [--allow-breaking]
      serve one app from a directory on one node, redeploying it on every change;
      --allow-breaking deploys schema changes that are not additive, listing what they break
  lockstep node --id <id> --region <region> [--zone <zone>] --data <dir> --http <port> --grpc <port>
                [--host 127.0.0.1] [--control host:port,...]
                [--app <appdir> --peers id=host:port,...] [--learner]
                [--fault-injection] [--tick-ms 50] [--election-ticks 10] [--request-timeout-ms 3000]
                [--snapshot-entries 10000] [--simulate-wan default|eu-us=40,eu-ap=120,...]
                [--token-file <control auth-dir>/system.token] [--tls-dir <dir>]
      one node of a cluster; --control registers it with the control plane, which places apps
      on it; without a control plane, --app with --peers bootstraps the app's group with those
      voters (give every founding node the same list), and --learner joins as a non-voter, to
      be added through POST /_admin/<app>/learners on the leader; --simulate-wan (tests and
      benchmarks only) delays traffic to nodes of other regions by the one-way milliseconds given
      (default: ${defaultWanMatrix}), and answers clients that send X-Lockstep-Client-Region late;
      --token-file holds the cluster's system token (a secured control plane's
      <auth-dir>/system.token): the node authenticates with it and checks every request it
      serves against the credentials the control plane sends;
      --tls-dir <dir>: gRPC with mutual TLS, from <dir>/ca.pem, <dir>/<id>.pem, <dir>/<id>-key.pem
  lockstep mcp --control <url> [--token-file <file>] [--apps a,b] [--regions eu] [--operations read,deploy] [--expires 8h]
      the control plane's operations as MCP tools over stdio, for an agent host to spawn; the
      token (LOCKSTEP_TOKEN or --token-file) is its only authority, narrowed first by the flags
  lockstep token new
      prints a new token (lst_...), for a control plane's --auth-dir files (system.token,
      admin.token) or a Kubernetes Secret made outside the cluster
  lockstep control --id <id> --data <dir> --http <port> --grpc <port> (--auth-dir <dir> | --open)
                   [--host 127.0.0.1] [--peers id=host:port,...] [--heartbeat 1s] [--suspect-after 5s]
                   [--down-after 5m] [--prepare-timeout 60s] [--audit-seal-every 60s]
                   [--audit-export <file>|<http(s) URL>] [--tls-dir <dir>]
      one member of the control plane (alone, or one of 3 given the same --peers); a node
      silent for --suspect-after is suspect, for --down-after down (its replicas move); a
      rollout whose replicas have not all prepared the new version within --prepare-timeout
      is aborted; the leader signs the audit trail's head into it every --audit-seal-every, and
      sends each signed checkpoint to --audit-export (a file, or a URL it POSTs to);
      --auth-dir secures the cluster: it holds system.token (made if absent; give every member
      the same one, and nodes --token-file) and admin.token (or LOCKSTEP_ADMIN_TOKEN; if neither,
      the first start makes the first admin token there and says so once); --open runs without
      authentication (development only); --tls-dir as for lockstep node
  lockstep certs --out <dir> [--ids <id>,<id>,...] [--hosts ${certsDefaults.hosts}] [--days ${certsDefaults.days}]
      a development CA (<dir>/ca.pem and ca-key.pem, made once, then reused) and, for each id,
      <id>.pem and <id>-key.pem that it signs: CN the id, the hosts as subject alternative names
      (give every name or address peers dial); keys are mode 0600; bad input exits 1
`;

/** --audit-export: an http(s) URL, or a file in a directory that exists. */
function auditExportFlag(value: string): string {
  if (/^https?:\/\//i.test(value)) {
    if (!URL.canParse(value)) fail(`--audit-export '${value}' is not a URL`);
    return value;
  }
  if (value === '' || !existsSync(dirname(resolve(value)))) fail(`--audit-export ${value}: its directory does not exist`);
  return value;
}

/** How long a node waits for its --token-file to appear. */
const tokenFileWaitMs = 60_000;

async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let said = false;
  while (!existsSync(path) && Date.now() < deadline) {
    if (!said) process.stdout.write(`lockstep: waiting for ${path} (the control plane writes it on its first start)\n`);
    said = true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function fail(message: string): never {
  process.stderr.write(`lockstep: ${message}\n\n${usage}`);
  process.exit(2);
}

function port(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) fail(`--${name} must be an integer between 0 and 65535, not '${value}'`);
  return n;
}

/** A duration flag: 500ms, 5s, 2m (a bare number is milliseconds). */
function duration(name: string, value: string, maxMs: number): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(value);
  const ms = match === null ? NaN : Number(match[1]) * (match[2] === 'm' ? 60_000 : match[2] === 's' ? 1_000 : 1);
  if (!(ms >= 1 && ms <= maxMs)) fail(`--${name} must be a duration such as 500ms, 5s or 2m (at most ${maxMs / 60_000} minutes), not '${value}'`);
  return ms;
}

/** --id: a node or member id. */
function idFlag(value: string | boolean | undefined): string {
  const id = value as string;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id)) fail(`--id '${id}' must be letters, digits, '-' and '_'`);
  return id;
}

/** --peers id=host:port,... */
function peersFlag(value: string | boolean | undefined): Map<string, string> {
  try {
    return parsePeers(value as string);
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}

/** --tls-dir: the CA, certificate and key of process `id`, checked before anything starts. A
 *  fault exits 1 naming the file; the message never holds what a file contains. */
function tlsDirFlag(value: string | boolean | undefined, id: string): TlsMaterial | undefined {
  if (value === undefined) return undefined;
  try {
    return loadTlsMaterial(value as string, id);
  } catch (error) {
    if (!(error instanceof TlsMaterialError)) throw error;
    process.stderr.write(`lockstep: --tls-dir: ${error.message}\n`);
    return process.exit(1);
  }
}

function positiveInt(name: string, value: string, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max) fail(`--${name} must be an integer between 1 and ${max}, not '${value}'`);
  return n;
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>;

function parse<T extends OptionSpec>(args: string[], options: T): { positionals: string[]; values: Record<keyof T, string | boolean | undefined> } {
  try {
    return parseArgs({ args, allowPositionals: true, strict: true, options }) as unknown as { positionals: string[]; values: Record<keyof T, string | boolean | undefined> };
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage);
    return;
  }
  if (command === 'up') {
    const { positionals, values } = parse(rest, {
      regions: { type: 'string' },
      app: { type: 'string' },
      'deploy-regions': { type: 'string' },
      data: { type: 'string' },
      host: { type: 'string' },
      'base-port': { type: 'string' },
      'simulate-wan': { type: 'boolean', default: false },
      'wan-matrix': { type: 'string' },
      open: { type: 'boolean', default: false },
      tls: { type: 'boolean', default: false },
    });
    if (positionals.length > 0) fail(`unexpected argument '${positionals[0]}'`);
    let options;
    try {
      options = parseUpFlags({
        regions: values.regions as string | undefined,
        app: values.app as string | undefined,
        deployRegions: values['deploy-regions'] as string | undefined,
        data: values.data as string | undefined,
        host: values.host as string | undefined,
        basePort: values['base-port'] as string | undefined,
        simulateWan: values['simulate-wan'] === true,
        wanMatrix: values['wan-matrix'] as string | undefined,
        open: values.open === true,
        tls: values.tls === true,
      });
    } catch (error) {
      if (error instanceof UpFlagError) fail(error.message);
      throw error;
    }
    await runUp(options);
    return;
  }
  if (command === 'mcp') {
    const { positionals, values } = parse(rest, {
      control: { type: 'string' },
      'token-file': { type: 'string' },
      apps: { type: 'string' },
      regions: { type: 'string' },
      operations: { type: 'string' },
      expires: { type: 'string' },
    });
    if (positionals.length > 0) fail(`unexpected argument '${positionals[0]}'`);
    let controlUrls: string[] = [];
    try {
      controlUrls = parseControlAddresses((values.control as string | undefined) ?? process.env.LOCKSTEP_CONTROL ?? '');
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error));
    }
    if (controlUrls.length === 0) fail('mcp needs --control <url> (or LOCKSTEP_CONTROL)');
    let token = process.env.LOCKSTEP_TOKEN?.trim() ?? '';
    if (values['token-file'] !== undefined) {
      try {
        token = readTokenFile(values['token-file'] as string, true);
      } catch (error) {
        if (error instanceof AuthFileError) fail(`--token-file: ${error.message}`);
        throw error;
      }
    }
    if (token === '') fail('mcp needs a token: LOCKSTEP_TOKEN or --token-file (the only authority the server has)');
    const list = (flag: string): string[] | undefined => (values[flag as 'apps'] === undefined ? undefined : (values[flag as 'apps'] as string).split(',').map((name) => name.trim()).filter((name) => name !== ''));
    const narrow: Record<string, unknown> = {};
    for (const [flag, field] of [['apps', 'apps'], ['regions', 'regions'], ['operations', 'ops']] as const) if (list(flag) !== undefined) narrow[field] = list(flag);
    if (values.expires !== undefined) {
      try {
        narrow.expiresAt = Date.now() + lifetimeMs(values.expires as string);
      } catch (error) {
        fail(error instanceof Error ? error.message : String(error));
      }
    }
    let narrowTo: Scope | undefined;
    try {
      narrowTo = Object.keys(narrow).length === 0 ? undefined : parseScope(narrow);
    } catch (error) {
      fail(error instanceof Error ? error.message.replace(/^scope\.ops/, '--operations').replace(/^scope\./, '--') : String(error));
    }
    // Loaded here only: the MCP SDK takes about a third of a second to import, which no other
    // command (a node, a control-plane member) should pay at every start.
    const { runMcp } = await import('./mcp.js');
    await runMcp({ controlUrls, token, ...(narrowTo === undefined ? {} : { narrowTo }) });
    return;
  }
  if (command === 'token') {
    if (rest.length !== 1 || rest[0] !== 'new') fail('token takes one verb: new');
    process.stdout.write(`${issueToken().token}\n`);
    return;
  }
  if (command === 'dev') {
    const { positionals, values } = parse(rest, {
      port: { type: 'string', default: '9926' },
      host: { type: 'string', default: '127.0.0.1' },
      data: { type: 'string', default: '.lockstep-data' },
      'allow-breaking': { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) fail('dev needs exactly one app directory');
    await runDev({ appDir: positionals[0] as string, host: values.host as string, port: port('port', values.port as string), dataDir: values.data as string, allowBreaking: values['allow-breaking'] === true });
    return;
  }
  if (command === 'node') {
    const { positionals, values } = parse(rest, {
      id: { type: 'string' },
      region: { type: 'string' },
      zone: { type: 'string' },
      data: { type: 'string' },
      http: { type: 'string' },
      grpc: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      app: { type: 'string' },
      peers: { type: 'string', default: '' },
      control: { type: 'string', default: '' },
      'simulate-wan': { type: 'string' },
      learner: { type: 'boolean', default: false },
      'fault-injection': { type: 'boolean', default: false },
      'tick-ms': { type: 'string', default: String(defaultTiming.tickMs) },
      'election-ticks': { type: 'string', default: String(defaultTiming.electionTicks) },
      'request-timeout-ms': { type: 'string', default: String(defaultTiming.requestTimeoutMs) },
      'snapshot-entries': { type: 'string', default: String(defaultTiming.snapshotEveryEntries) },
      'token-file': { type: 'string' },
      'tls-dir': { type: 'string' },
    });
    if (positionals.length > 0) fail(`unexpected argument '${positionals[0]}'`);
    for (const required of ['id', 'region', 'data', 'http', 'grpc'] as const) if (values[required] === undefined) fail(`node needs --${required}`);
    let systemToken: string | undefined;
    if (values['token-file'] !== undefined) {
      try {
        // The control plane writes the file on its first start: a node started beside it (a
        // compose file, a pod) waits for it a while rather than failing at once.
        await waitForFile(values['token-file'] as string, tokenFileWaitMs);
        systemToken = readTokenFile(values['token-file'] as string);
      } catch (error) {
        if (error instanceof AuthFileError) fail(`--token-file: ${error.message}`);
        throw error;
      }
    }
    const id = idFlag(values.id);
    const peers = peersFlag(values.peers);
    if (values.app !== undefined && !values.learner && !peers.has(id)) fail(`--peers must include this node (${id}) when bootstrapping --app`);
    let controlUrls: string[] = [];
    try {
      controlUrls = parseControlAddresses(values.control as string);
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error));
    }
    if (controlUrls.length > 0 && values.app !== undefined) fail('--app is for a node without a control plane; with --control, deploy apps with clusterctl deploy');
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(values.region as string)) fail(`--region '${String(values.region)}' must be lower-case letters, digits and '-'`);
    if (values.zone !== undefined && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(values.zone as string)) fail(`--zone '${String(values.zone)}' must be lower-case letters, digits and '-'`);
    const snapshotEntries = positiveInt('snapshot-entries', values['snapshot-entries'] as string, 100_000_000);
    let wanMatrix: Map<string, number> | undefined;
    if (values['simulate-wan'] !== undefined) {
      if (controlUrls.length === 0) fail('--simulate-wan needs --control (node regions come from the control plane)');
      try {
        wanMatrix = parseWanMatrix(values['simulate-wan'] === 'default' ? defaultWanMatrix : (values['simulate-wan'] as string));
      } catch (error) {
        fail(`--simulate-wan: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const tls = tlsDirFlag(values['tls-dir'], id);
    await runNode({
      id,
      ...(tls === undefined ? {} : { tls }),
      region: values.region as string,
      ...(values.zone === undefined ? {} : { zone: values.zone as string }),
      dataDir: values.data as string,
      host: values.host as string,
      httpPort: port('http', values.http as string),
      grpcPort: port('grpc', values.grpc as string),
      ...(values.app === undefined ? {} : { appDir: values.app as string }),
      peers,
      controlUrls,
      ...(wanMatrix === undefined ? {} : { wanMatrix }),
      ...(systemToken === undefined ? {} : { systemToken }),
      learner: values.learner === true,
      faultInjection: values['fault-injection'] === true,
      timing: {
        tickMs: positiveInt('tick-ms', values['tick-ms'] as string, 10_000),
        electionTicks: positiveInt('election-ticks', values['election-ticks'] as string, 1_000),
        heartbeatTicks: defaultTiming.heartbeatTicks,
        requestTimeoutMs: positiveInt('request-timeout-ms', values['request-timeout-ms'] as string, 600_000),
        snapshotEveryEntries: snapshotEntries,
        compactMarginEntries: Math.max(1, Math.floor(snapshotEntries / 5)),
      },
    });
    return;
  }
  if (command === 'control') {
    const { positionals, values } = parse(rest, {
      id: { type: 'string' },
      data: { type: 'string' },
      http: { type: 'string' },
      grpc: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      peers: { type: 'string', default: '' },
      heartbeat: { type: 'string', default: `${defaultLivenessTiming.heartbeatIntervalMs}ms` },
      'suspect-after': { type: 'string', default: `${defaultLivenessTiming.suspectAfterMs}ms` },
      'down-after': { type: 'string', default: `${defaultLivenessTiming.downAfterMs}ms` },
      'prepare-timeout': { type: 'string', default: `${defaultRolloutTiming.prepareTimeoutMs}ms` },
      'audit-seal-every': { type: 'string', default: `${defaultAuditSealEveryMs}ms` },
      'auth-dir': { type: 'string' },
      open: { type: 'boolean', default: false },
      'audit-export': { type: 'string' },
      'tls-dir': { type: 'string' },
    });
    if (positionals.length > 0) fail(`unexpected argument '${positionals[0]}'`);
    for (const required of ['id', 'data', 'http', 'grpc'] as const) if (values[required] === undefined) fail(`control needs --${required}`);
    if ((values['auth-dir'] === undefined) === (values.open !== true)) fail('control needs --auth-dir <dir> (secured: tokens checked on every request) or --open (development mode: no authentication), not both');
    let security: ControlCredentials | undefined;
    if (values['auth-dir'] !== undefined) {
      try {
        security = controlCredentials(values['auth-dir'] as string, process.env);
      } catch (error) {
        if (error instanceof AuthFileError) fail(error.message);
        throw error;
      }
    }
    const id = idFlag(values.id);
    const peers = peersFlag(values.peers);
    if (peers.size > 0 && !peers.has(id)) fail(`--peers must include this member (${id})`);
    if (peers.size !== 0 && peers.size !== 1 && peers.size !== 3 && peers.size !== 5) fail(`the control plane has 1, 3 or 5 members; --peers names ${peers.size}`);
    const heartbeatIntervalMs = duration('heartbeat', values.heartbeat as string, 60_000);
    const suspectAfterMs = duration('suspect-after', values['suspect-after'] as string, 3_600_000);
    const downAfterMs = duration('down-after', values['down-after'] as string, 24 * 3_600_000);
    if (suspectAfterMs <= heartbeatIntervalMs) fail('--suspect-after must be longer than --heartbeat');
    if (downAfterMs < suspectAfterMs) fail('--down-after must be at least --suspect-after');
    const tls = tlsDirFlag(values['tls-dir'], id);
    await runControl({
      id,
      ...(tls === undefined ? {} : { tls }),
      dataDir: values.data as string,
      host: values.host as string,
      httpPort: port('http', values.http as string),
      grpcPort: port('grpc', values.grpc as string),
      peers,
      timing: defaultTiming,
      liveness: { heartbeatIntervalMs, suspectAfterMs, downAfterMs },
      rollout: { prepareTimeoutMs: duration('prepare-timeout', values['prepare-timeout'] as string, 3_600_000) },
      auditSealEveryMs: duration('audit-seal-every', values['audit-seal-every'] as string, 24 * 3_600_000),
      ...(security === undefined ? {} : { security }),
      ...(values['audit-export'] === undefined ? {} : { auditExport: auditExportFlag(values['audit-export'] as string) }),
    });
    return;
  }
  if (command === 'certs') {
    const { positionals, values } = parse(rest, {
      out: { type: 'string' },
      ids: { type: 'string' },
      hosts: { type: 'string' },
      days: { type: 'string' },
    });
    if (positionals.length > 0) fail(`unexpected argument '${positionals[0]}'`);
    await runCerts({ out: values.out as string | undefined, ids: values.ids as string | undefined, hosts: values.hosts as string | undefined, days: values.days as string | undefined });
    return;
  }
  fail(`unknown command '${command}'`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`lockstep: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
