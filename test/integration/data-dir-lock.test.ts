// One data directory, one process: a second `lockstep dev` or `lockstep node` on a directory in
// use refuses to start, naming the directory and the process; a lock left by SIGKILL is taken over.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliPath, copyApp, removeDir, startDevServer, tempDir, type DevServer } from '../support/dev-server.js';

function runCli(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCKSTEP_LOG_LEVEL: 'warn' } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

const appDir = copyApp('shop');
const dataDir = tempDir('lockstep-lock-');
let server: DevServer | undefined;

afterAll(async () => {
  await server?.stop();
  removeDir(appDir);
  removeDir(dataDir);
});

describe('data directory lock', () => {
  it('refuses a second process on the same data directory, and takes over after SIGKILL', async () => {
    server = await startDevServer(appDir, dataDir);
    const pid = server.process.pid;
    const second = await runCli(['dev', appDir, '--port', '0', '--data', dataDir]);
    expect(second.code).toBe(1);
    expect(second.output).toContain(resolve(dataDir));
    expect(second.output).toContain(`process ${pid}`);
    const node = await runCli(['node', '--id', 'n1', '--region', 'eu', '--data', dataDir, '--http', '0', '--grpc', '0']);
    expect(node.code).toBe(1);
    expect(node.output).toContain(`in use by process ${pid}`);
    // The first server kept serving and was not disturbed.
    expect((await fetch(`${server.url}/Item/`)).status).toBe(200);

    await server.stop('SIGKILL');
    server = await startDevServer(appDir, dataDir);
    expect((await fetch(`${server.url}/Item/`)).status).toBe(200);
  });
});
