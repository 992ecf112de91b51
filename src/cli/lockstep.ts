#!/usr/bin/env node
// The `lockstep` command.
import { parseArgs } from 'node:util';
import { runDev } from './dev.js';

const usage = `usage: lockstep dev <appdir> [--port 9926] [--host 127.0.0.1] [--data <dir>]

  dev    serve one app from a directory, redeploying it on every change
         --port   HTTP port (0 picks a free one; default 9926)
         --host   address to listen on (default 127.0.0.1)
         --data   data directory (default ./.lockstep-data)
`;

function fail(message: string): never {
  process.stderr.write(`lockstep: ${message}\n\n${usage}`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage);
    return;
  }
  if (command !== 'dev') fail(`unknown command '${command}'`);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: { port: { type: 'string', default: '9926' }, host: { type: 'string', default: '127.0.0.1' }, data: { type: 'string', default: '.lockstep-data' } },
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1) fail('dev needs exactly one app directory');
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) fail(`--port must be an integer between 0 and 65535, not '${values.port}'`);
  await runDev({ appDir: positionals[0] as string, host: values.host, port, dataDir: values.data });
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`lockstep: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
