// `lockstep dev <appdir>`: serve one app from a directory on a single node, and redeploy it
// through Stage/Prepare/Activate whenever its files change. A broken edit is aborted and the
// previous version keeps serving.
import { watch, type FSWatcher } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AppHost } from '../app/app-host.js';
import { BundleError, readBundle } from '../app/bundle.js';
import { parseConfig } from '../app/config.js';
import { runChecks } from '../http/check-requests.js';
import { NodeServer } from '../http/server.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { lockDataDir } from '../storage/data-dir-lock.js';
import type { Bundle } from '../model/app-entries.js';

export interface DevOptions {
  readonly appDir: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Deploy schema changes that are not additive, listing what they break. */
  readonly allowBreaking: boolean;
}

/** Quiet time after the last file event before redeploying (editors write files in bursts). */
const watchDebounceMs = 150;
/** How often the app directory is read whatever the file events say (an app is a few small files). */
const watchPollIntervalMs = 1_000;

const appNamePattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export async function runDev(options: DevOptions): Promise<void> {
  const appDir = resolve(options.appDir);
  const logger = createLogger({ mode: 'dev' });
  const bundle = await readBundle(appDir);
  const name = appName(bundle, appDir);
  const config = parseConfig(bundle.files['config.yaml']);
  const dataLock = lockDataDir(resolve(options.dataDir));
  const host = await AppHost.openSingleNode({
    name,
    dataDir: join(resolve(options.dataDir), name),
    sourceDir: appDir,
    retainEntries: config.realtime.retainEntries,
    logger,
    runChecks,
    onFatal: (error, context) => {
      // The log's memory no longer matches its file: stop rather than serve from it.
      logger.fatal({ err: error, context }, 'app log stopped');
      process.exit(1);
    },
  });
  const first = await deployAndReport(host, bundle, logger, options.allowBreaking);
  if (host.activeRuntime() === undefined) {
    await host.close();
    throw new Error(`app ${name} has no version that loads${first === undefined ? '' : `: ${first}`}`);
  }
  const server = new NodeServer({ host: options.host, port: options.port, apps: new Map([[name, host]]), logger, nodeId: 'dev' });
  const address = await server.listen();
  const url = `http://${address.address}:${address.port}/${name}/`;
  process.stdout.write(`lockstep: serving app ${name} version ${host.appliedState().activeVersion} at ${url}\n`);
  process.stdout.write('lockstep: OPEN (development mode): no authentication, every caller may do everything\n');
  logger.info({ app: name, url, version: host.appliedState().activeVersion }, 'serving');

  // The last bundle read from the directory, deployed or refused: a change is a different hash.
  let lastSeenHash = bundle.hash;
  const redeploy = async (): Promise<void> => {
    try {
      const next = await readBundle(appDir);
      if (next.hash === lastSeenHash) return;
      lastSeenHash = next.hash;
      // A config that does not parse is reported by the deploy; one that names the app anew is not deployed.
      let nextName: string | undefined;
      try {
        nextName = parseConfig(next.files['config.yaml']).name ?? basename(appDir);
      } catch {
        nextName = undefined;
      }
      if (nextName !== undefined && nextName !== name) {
        process.stderr.write(
          `lockstep: the app name changed from '${name}' to '${nextName}' (config.yaml); restart lockstep dev to serve it under the new name; version ${host.appliedState().activeVersion} keeps serving as '${name}'\n`,
        );
        return;
      }
      await deployAndReport(host, next, logger, options.allowBreaking);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      process.stderr.write(`lockstep: cannot read ${appDir}: ${reason}; version ${host.appliedState().activeVersion} keeps serving\n`);
    }
  };
  const watcher = watchApp(appDir, options.dataDir, redeploy);

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    watcher.close();
    await server.close();
    await host.close();
    dataLock.release();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

function appName(bundle: Bundle, appDir: string): string {
  let fromConfig: string | undefined;
  try {
    fromConfig = parseConfig(bundle.files['config.yaml']).name;
  } catch {
    fromConfig = undefined; // reported by the deploy that follows
  }
  const name = fromConfig ?? basename(appDir);
  if (!appNamePattern.test(name)) {
    throw new BundleError(`app name '${name}' is not valid: use letters, digits, '-' and '_' (set name: in config.yaml)`);
  }
  return name;
}

/** Deploys and prints the outcome; returns the abort reason, if any. */
async function deployAndReport(host: AppHost, bundle: Bundle, logger: Logger, allowBreaking: boolean): Promise<string | undefined> {
  const outcome = await host.deploy(bundle, { allowBreaking });
  switch (outcome.status) {
    case 'unchanged':
      return undefined;
    case 'activated':
      process.stdout.write(`lockstep: version ${outcome.version} active at index ${outcome.index}${outcome.additive.length > 0 ? ` (${outcome.additive.join('; ')})` : ''}\n`);
      logger.info({ app: host.name, version: outcome.version, index: outcome.index, changes: outcome.additive }, 'version activated');
      return undefined;
    case 'aborted': {
      const serving = host.appliedState().activeVersion;
      process.stderr.write(`lockstep: version ${outcome.version} refused: ${outcome.reason}${serving === 0 ? '' : `; version ${serving} keeps serving`}\n`);
      logger.warn({ app: host.name, version: outcome.version, reason: outcome.reason }, 'version aborted');
      return outcome.reason;
    }
  }
}

/**
 * Calls `onChange` after edits of the app directory: at once (debounced) on a file event, and on
 * a poll. Events alone miss edits: a file replaced by rename (mv, sed -i, editors that save that
 * way) or deleted can leave the watch blind to it; the poll reads the bundle and `onChange`
 * compares hashes, so nothing is missed for longer than one poll interval.
 */
function watchApp(appDir: string, dataDir: string, onChange: () => Promise<void>): { close(): void } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const data = resolve(dataDir);
  const run = (): void => {
    running = running.then(onChange);
  };
  const watcher: FSWatcher = watch(appDir, { recursive: true }, (_event, file) => {
    // The data directory may live inside the app directory; its writes are not edits.
    if (file !== null && resolve(appDir, file).startsWith(data)) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(run, watchDebounceMs);
  });
  const poll = setInterval(run, watchPollIntervalMs);
  return {
    close: () => {
      watcher.close();
      clearInterval(poll);
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
