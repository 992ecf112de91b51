// Starts a real `lockstep dev` process (the compiled CLI) on an ephemeral port, for integration
// tests. `npm test` builds dist/ before vitest runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Compiled into dist/ (a bench script), root is dist itself.
export const cliPath = root.endsWith('dist') ? join(root, 'src', 'cli', 'lockstep.js') : join(root, 'dist', 'src', 'cli', 'lockstep.js');
export const examplesDir = root.endsWith('dist') ? join(root, '..', 'examples') : join(root, 'examples');

/** Longest a server may take to print its URL. */
const startTimeoutMs = 20_000;

export interface DevServer {
  readonly url: string; // http://127.0.0.1:PORT/<app>
  readonly base: string; // http://127.0.0.1:PORT
  readonly port: number;
  readonly process: ChildProcess;
  readonly appDir: string;
  readonly dataDir: string;
  output(): string;
  /** Resolves with the next stdout/stderr line matching `pattern` (bounded). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A fresh copy of an example app in a temp folder, so tests can edit it. */
export function copyApp(example: string): string {
  const dir = mkdtempSync(join(tmpdir(), `lockstep-app-${example}-`));
  cpSync(join(examplesDir, example), dir, { recursive: true });
  return dir;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function startDevServer(appDir: string, dataDir: string, port = 0, extraArgs: readonly string[] = []): Promise<DevServer> {
  const child = spawn(process.execPath, [cliPath, 'dev', appDir, '--port', String(port), '--data', dataDir, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOCKSTEP_LOG_LEVEL: 'warn' },
  });
  let output = '';
  const listeners = new Set<(line: string) => void>();
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString();
    output += text;
    for (const line of text.split('\n')) for (const listener of listeners) listener(line);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));

  const waitForOutput = (pattern: RegExp, timeoutMs = startTimeoutMs): Promise<string> =>
    new Promise((resolveLine, reject) => {
      const existing = output.split('\n').find((line) => pattern.test(line));
      if (existing !== undefined) {
        resolveLine(existing);
        return;
      }
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms; output:\n${output}`));
      }, timeoutMs);
      const listener = (line: string): void => {
        if (!pattern.test(line)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolveLine(line);
      };
      listeners.add(listener);
      void exited.then(() => {
        if (!listeners.has(listener)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        reject(new Error(`server exited before printing ${pattern}; output:\n${output}`));
      });
    });

  const line = await waitForOutput(/serving app \S+ version \d+ at http/);
  const url = (/(http:\/\/\S+?)\/?$/.exec(line) as RegExpExecArray)[1] as string;
  const base = new URL(url).origin;
  return {
    url,
    base,
    port: Number(new URL(url).port),
    process: child,
    appDir,
    dataDir,
    output: () => output,
    waitForOutput,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/**
 * A dev server on a fresh copy of `example`, started before the calling file's tests and
 * stopped, with its folders removed, after them. `server` is the running server.
 */
export function useDevServer(example: string, dataPrefix: string): { readonly server: DevServer; restart(whileDown?: () => Promise<void>): Promise<void> } {
  const appDir = copyApp(example);
  const dataDir = tempDir(dataPrefix);
  let current: DevServer | undefined;
  beforeAll(async () => {
    current = await startDevServer(appDir, dataDir);
  });
  afterAll(async () => {
    await current?.stop();
    removeDir(appDir);
    removeDir(dataDir);
  });
  return {
    get server(): DevServer {
      if (current === undefined) throw new Error('the dev server is not started yet (use it inside a test or a later hook)');
      return current;
    },
    /** Stops the server and starts it again on the same port, app and data directories;
     *  `whileDown` runs in between. */
    async restart(whileDown?: () => Promise<void>): Promise<void> {
      const port = current?.port ?? 0;
      await current?.stop();
      await whileDown?.();
      current = await startDevServer(appDir, dataDir, port);
    },
  };
}
