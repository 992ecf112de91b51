// config.yaml of an app: parsed with `yaml`, checked with ajv, defaults filled in. Unknown keys
// are errors, not silently ignored: a typo in an option must not look like a working setting.
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';

export interface TableConfig {
  readonly allowScan?: boolean;
}

export interface AppConfig {
  /** The app's name: the first path segment of its REST API. */
  readonly name?: string;
  readonly rest: {
    /** Requests with a larger body get 413. */
    readonly bodyBytesMax: number;
    /** Allow filters that no index can answer (a full table scan). */
    readonly allowScan: boolean;
    /** Upper bound on records one query holds in memory (results or an in-memory sort). */
    readonly queryResultsMax: number;
  };
  readonly realtime: {
    /** How many recent log entries a subscription can resume from with `?since=`. */
    readonly retainEntries: number;
  };
  readonly tables: Readonly<Record<string, TableConfig>>;
}

export const defaultConfig: AppConfig = {
  rest: { bodyBytesMax: 1024 * 1024, allowScan: false, queryResultsMax: 10_000 },
  realtime: { retainEntries: 10_000 },
  tables: {},
};

const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' },
    rest: {
      type: 'object',
      additionalProperties: false,
      properties: {
        bodyBytesMax: { type: 'integer', minimum: 1, maximum: 64 * 1024 * 1024 },
        allowScan: { type: 'boolean' },
        queryResultsMax: { type: 'integer', minimum: 1, maximum: 1_000_000 },
      },
    },
    realtime: {
      type: 'object',
      additionalProperties: false,
      properties: { retainEntries: { type: 'integer', minimum: 1, maximum: 10_000_000 } },
    },
    tables: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: { allowScan: { type: 'boolean' } },
      },
    },
  },
} as const;

const validateConfig = new Ajv({ allErrors: true }).compile(configSchema);

export class ConfigError extends Error {}

export function parseConfig(text: string | undefined): AppConfig {
  if (text === undefined || text.trim() === '') return defaultConfig;
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config.yaml is not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (raw === null || raw === undefined) return defaultConfig;
  if (!validateConfig(raw)) {
    throw new ConfigError(`config.yaml: ${(validateConfig.errors ?? []).map(describe).join('; ')}`);
  }
  const given = raw as { name?: string; rest?: Partial<AppConfig['rest']>; realtime?: Partial<AppConfig['realtime']>; tables?: Record<string, TableConfig> };
  return {
    ...(given.name === undefined ? {} : { name: given.name }),
    rest: { ...defaultConfig.rest, ...given.rest },
    realtime: { ...defaultConfig.realtime, ...given.realtime },
    tables: given.tables ?? {},
  };
}

function describe(error: ErrorObject): string {
  const where = error.instancePath === '' ? '(top level)' : error.instancePath.slice(1).replaceAll('/', '.');
  if (error.keyword === 'additionalProperties') {
    return `${where}: unknown option '${String((error.params as { additionalProperty: string }).additionalProperty)}'`;
  }
  return `${where}: ${error.message ?? 'is invalid'}`;
}
