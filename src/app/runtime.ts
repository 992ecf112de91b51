// One loaded version of an app: its schema, validators, config, table classes and the app's own
// resource classes, compiled in isolation from every other version.
import type { Bundle } from '../model/app-entries.js';
import { Problem } from '../model/problem.js';
import { compileValidator, parseSchema, type RecordValidator, type SchemaDef } from '../schema/index.js';
import type { AppStore } from '../storage/app-store.js';
import { CompileError, loadResources } from './compile.js';
import { parseConfig, type AppConfig } from './config.js';
import { makeTableClass, Resource, type ResourceClass, type TableClass } from './resource.js';

export interface Endpoint {
  /** The path segment after the app name. */
  readonly name: string;
  readonly resourceClass: ResourceClass;
  /** Set when the endpoint is a table (or app code extending one). */
  readonly table?: TableClass['table'];
}

export interface AppRuntime {
  readonly app: string;
  readonly version: number;
  readonly hash: string;
  readonly schema: SchemaDef;
  readonly config: AppConfig;
  readonly store: AppStore;
  readonly validators: ReadonlyMap<string, RecordValidator>;
  readonly tables: Readonly<Record<string, TableClass>>;
  readonly endpoints: ReadonlyMap<string, Endpoint>;
}

export interface LoadOptions {
  readonly app: string;
  readonly version: number;
  readonly bundle: Bundle;
  readonly store: AppStore;
  /** Where the app's own relative imports and packages resolve from. */
  readonly sourceDir: string;
  /** Where compiled modules are written. */
  readonly codeDir: string;
}

/** Loads and checks a version; throws SchemaError, ConfigError or CompileError with the reason. */
export async function loadRuntime(options: LoadOptions): Promise<AppRuntime> {
  const { bundle } = options;
  const schema = parseSchema(bundle.files['schema.graphql'] ?? '');
  const config = parseConfig(bundle.files['config.yaml']);
  const validators = new Map<string, RecordValidator>();
  const tables: Record<string, TableClass> = {};
  const endpoints = new Map<string, Endpoint>();
  for (const table of schema.tables.values()) {
    validators.set(table.name, compileValidator(schema, table));
    const tableClass = makeTableClass(table);
    tables[table.name] = tableClass;
    endpoints.set(table.exportName, { name: table.exportName, resourceClass: tableClass, table });
  }
  const runtimeId = `${options.app}-v${options.version}-${bundle.hash.slice(0, 12)}`;
  const exports = await loadResources(bundle, options.sourceDir, options.codeDir, runtimeId, { tables, Resource, Problem });
  for (const [exportName, value] of Object.entries(exports)) {
    if (typeof value !== 'function' || !(value.prototype instanceof Resource)) continue;
    const resourceClass = value as ResourceClass;
    const table = schema.tables.get(exportName) ?? schema.tablesByExport.get(exportName);
    if (table !== undefined) {
      const base = tables[table.name];
      if (base === undefined || !(resourceClass.prototype instanceof base)) {
        throw new CompileError(`export ${exportName} has the name of table ${table.name} but does not extend tables.${table.name}`);
      }
      endpoints.set(table.exportName, { name: table.exportName, resourceClass, table });
    } else {
      endpoints.set(exportName, { name: exportName, resourceClass });
    }
  }
  return { app: options.app, version: options.version, hash: bundle.hash, schema, config, store: options.store, validators, tables, endpoints };
}
