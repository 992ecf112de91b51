#!/usr/bin/env node
// The `lockstep` command.
import { parseArgs } from 'node:util';
import { defaultTiming } from '../cluster/node-host.js';
import { runDev } from './dev.js';
import { parsePeers, runNode } from './node.js';

const usage = `usage:
  lockstep dev <appdir> [--port 9926] [--host 127.0.0.1] [--data <dir>] [--allow-breaking]
      serve one app from a directory on one node, redeploying it on every change;
      --allow-breaking deploys schema changes that are not additive, listing what they break
  lockstep node --id <id> --region <region> [--zone <zone>] --data <dir> --http <port> --grpc <port>
                [--host 127.0.0.1] [--app <appdir> --peers id=host:port,...] [--learner]
                [--fault-injection] [--tick-ms 50] [--election-ticks 10] [--request-timeout-ms 3000]
                [--snapshot-entries 10000]
      one node of a cluster; --app with --peers bootstraps the app's group with those voters
      (give every founding node the same list); --learner joins as a non-voter, to be added
      through POST /_admin/<app>/learners on the leader
`;

function fail(message: string): never {
  process.stderr.write(`lockstep: ${message}\n\n${usage}`);
  process.exit(2);
}

function port(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) fail(`--${name} must be an integer between 0 and 65535, not '${value}'`);
  return n;
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
      learner: { type: 'boolean', default: false },
      'fault-injection': { type: 'boolean', default: false },
      'tick-ms': { type: 'string', default: String(defaultTiming.tickMs) },
      'election-ticks': { type: 'string', default: String(defaultTiming.electionTicks) },
      'request-timeout-ms': { type: 'string', default: String(defaultTiming.requestTimeoutMs) },
      'snapshot-entries': { type: 'string', default: String(defaultTiming.snapshotEveryEntries) },
    });
    if (positionals.length > 0) fail(`unexpected argument '${positionals[0]}'`);
    for (const required of ['id', 'region', 'data', 'http', 'grpc'] as const) if (values[required] === undefined) fail(`node needs --${required}`);
    const id = values.id as string;
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id)) fail(`--id '${id}' must be letters, digits, '-' and '_'`);
    let peers: Map<string, string>;
    try {
      peers = parsePeers(values.peers as string);
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error));
    }
    if (values.app !== undefined && !values.learner && !peers.has(id)) fail(`--peers must include this node (${id}) when bootstrapping --app`);
    const snapshotEntries = positiveInt('snapshot-entries', values['snapshot-entries'] as string, 100_000_000);
    await runNode({
      id,
      region: values.region as string,
      ...(values.zone === undefined ? {} : { zone: values.zone as string }),
      dataDir: values.data as string,
      host: values.host as string,
      httpPort: port('http', values.http as string),
      grpcPort: port('grpc', values.grpc as string),
      ...(values.app === undefined ? {} : { appDir: values.app as string }),
      peers,
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
  fail(`unknown command '${command}'`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`lockstep: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
