// The processes `lockstep up` starts: each runs the compiled `lockstep` CLI with its output
// appended to a log file, in a process group of its own (so a Ctrl-C reaches `lockstep up`
// alone, and `lockstep up` decides the order and the grace of the shutdown). An exit that
// `stop` did not ask for is reported to the owner; whatever is still running when this process
// exits is killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, fstatSync, writeSync } from 'node:fs';

/** How much of a log's end is read to show why a process died. */
const logTailBytesMax = 4096;
const logTailLinesMax = 12;

export interface ChildSpec {
  readonly id: string;
  /** Arguments of the CLI, the subcommand first. */
  readonly args: readonly string[];
  readonly logPath: string;
}

interface Running {
  readonly spec: ChildSpec;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

export class ChildProcesses {
  private readonly running = new Map<string, Running>();
  private stopping = false;

  constructor(
    private readonly cliPath: string,
    /** An exit nobody asked for: `how` says with which code or signal; this run's output
     *  starts at byte `logStartBytes` of the log. */
    private readonly onUnexpectedExit: (spec: ChildSpec, how: string, logStartBytes: number) => void,
  ) {
    process.once('exit', () => {
      for (const { child } of this.running.values()) child.kill('SIGKILL');
    });
  }

  /** Starts one process; returns its pid. */
  start(spec: ChildSpec): number {
    const log = openSync(spec.logPath, 'a');
    const logStartBytes = fstatSync(log).size;
    writeSync(log, `--- ${new Date().toISOString()} lockstep ${spec.args.join(' ')}\n`);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [this.cliPath, ...spec.args], { stdio: ['ignore', log, log], detached: true });
    } finally {
      closeSync(log);
    }
    const exited = new Promise<void>((resolveExit) => {
      const onEnd = (how: string): void => {
        if (!this.running.has(spec.id)) return;
        this.running.delete(spec.id);
        resolveExit();
        if (!this.stopping) this.onUnexpectedExit(spec, how, logStartBytes);
      };
      child.once('exit', (code, signal) => onEnd(signal === null ? `exit code ${String(code)}` : `signal ${signal}`));
      child.once('error', (error) => onEnd(`error ${error.message}`));
    });
    this.running.set(spec.id, { spec, child, exited });
    if (child.pid === undefined) throw new Error(`cannot start ${spec.id}: no pid`);
    return child.pid;
  }

  /** SIGTERM to each of `ids` that still runs, SIGKILL after `graceMs`; from now on no exit is
   *  unexpected. */
  async stop(ids: readonly string[], graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(
      ids.map(async (id) => {
        const running = this.running.get(id);
        if (running === undefined) return;
        running.child.kill('SIGTERM');
        const timer = setTimeout(() => running.child.kill('SIGKILL'), graceMs);
        await running.exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** The last lines of a log file from byte `startBytes` on, to show beside a process that died. */
export function logTail(path: string, startBytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const length = Math.max(0, Math.min(size - startBytes, logTailBytesMax));
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-logTailLinesMax).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
