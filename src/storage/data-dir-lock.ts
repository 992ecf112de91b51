// One data directory, one process. Two processes on the same directory would each run its own
// Raft group over the same LMDB files and hand out the same log indexes; the second one to start
// must refuse, naming the directory and the process that holds it.
//
// The lock is a file holding the owner's pid, created exclusively. A process killed with SIGKILL
// leaves it behind; the next start finds that pid gone and takes the lock over.
import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export const lockFileName = 'lockstep.lock';

export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly ownerPid: number,
  ) {
    super(
      `data directory ${dir} is in use by process ${ownerPid}; stop that process or use another --data directory ` +
        `(if no Lockstep process has pid ${ownerPid}, remove ${join(dir, lockFileName)})`,
    );
  }
}

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the directory's lock for this process, or throws DataDirLockedError. */
export function lockDataDir(dir: string): DataDirLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, lockFileName);
  // Two attempts: the second after clearing a lock left by a process that no longer runs.
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = readOwner(path);
      if (owner !== undefined && owner !== process.pid && processAlive(owner)) throw new DataDirLockedError(dir, owner);
      rmSync(path, { force: true });
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    const release = (): void => {
      if (readOwner(path) === process.pid) rmSync(path, { force: true });
    };
    process.once('exit', release);
    return { path, release };
  }
  throw new DataDirLockedError(dir, readOwner(path) ?? 0);
}
