// Compiles an app's resources.ts|js into one ES module. App code imports the runtime as
// `import { tables, Resource, Problem } from 'lockstep'`; that import is bound here to the runtime
// of the one version being loaded, so two versions of an app never share classes or table bindings.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import type { Bundle } from '../model/app-entries.js';

export const runtimeRegistryKey = Symbol.for('lockstep.runtimes');

export interface RuntimeExports {
  readonly tables: Readonly<Record<string, unknown>>;
  readonly Resource: unknown;
  readonly Problem: unknown;
}

type Registry = Map<string, RuntimeExports>;

function registry(): Registry {
  const holder = globalThis as { [runtimeRegistryKey]?: Registry };
  holder[runtimeRegistryKey] ??= new Map();
  return holder[runtimeRegistryKey];
}

export class CompileError extends Error {}

/** Loads made by this process: each load gets its own registry key and module URL, so that two
 *  hosts of the same app version in one process (tests, a node hosting a replica twice after a
 *  move) never bind each other's runtime, and a reload never gets a cached module. */
let loadSequence = 0;

/**
 * Compiles and imports the bundle's resources file. `sourceDir` resolves the app's own relative
 * imports and packages; `outDir` receives the compiled module. Returns the module's exports.
 */
export async function loadResources(
  bundle: Bundle,
  sourceDir: string,
  outDir: string,
  runtimeId: string,
  runtime: RuntimeExports,
): Promise<Record<string, unknown>> {
  const fileName = bundle.files['resources.ts'] !== undefined ? 'resources.ts' : 'resources.js';
  const source = bundle.files[fileName];
  if (source === undefined) return {};
  const loadId = `${runtimeId}.${process.pid}.${++loadSequence}`;
  const lockstepModule: Plugin = {
    name: 'lockstep-runtime',
    setup(plugin) {
      plugin.onResolve({ filter: /^lockstep$/ }, () => ({ path: loadId, namespace: 'lockstep-runtime' }));
      plugin.onLoad({ filter: /.*/, namespace: 'lockstep-runtime' }, () => ({
        contents:
          `const runtime = globalThis[Symbol.for('lockstep.runtimes')].get(${JSON.stringify(loadId)});\n` +
          'export const tables = runtime.tables;\nexport const Resource = runtime.Resource;\nexport const Problem = runtime.Problem;\n',
        loader: 'js',
      }));
    },
  };
  let code: string;
  try {
    const result = await build({
      stdin: { contents: source, loader: fileName.endsWith('.ts') ? 'ts' : 'js', resolveDir: sourceDir, sourcefile: fileName },
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      logLevel: 'silent',
      plugins: [lockstepModule],
    });
    code = result.outputFiles[0]?.text ?? '';
  } catch (error) {
    const failure = error as { errors?: { text: string; location?: { line: number; column: number } | null }[] };
    const messages = (failure.errors ?? []).map((e) => (e.location ? `${fileName}:${e.location.line}:${e.location.column}: ${e.text}` : e.text));
    throw new CompileError(messages.length > 0 ? messages.join('\n') : String(error));
  }
  await mkdir(outDir, { recursive: true });
  const outFile = join(outDir, `${loadId.replace(/[^A-Za-z0-9_.-]/g, '_')}.mjs`);
  await writeFile(outFile, code);
  registry().set(loadId, runtime);
  try {
    return (await import(pathToFileURL(outFile).href)) as Record<string, unknown>;
  } catch (error) {
    throw new CompileError(`${fileName} failed to load: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    // The module read its runtime while it was evaluated; neither the key nor the file is
    // needed again (the module stays loaded).
    registry().delete(loadId);
    await rm(outFile, { force: true });
  }
}
