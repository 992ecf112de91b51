// config.yaml of an app: parsed with `yaml`, checked with ajv, defaults filled in. Unknown keys
// are errors, not silently ignored: a typo in an option must not look like a working setting.
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';

export interface TableConfig {
  readonly allowScan?: boolean;
}

/** A request the app declares must succeed against a version before it serves, and while it is
 *  validated after activation (see docs: "checks"). */
export interface CheckSpec {
  readonly name: string;
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Relative to the app: `/Product/` or `/Product/42?select=name`. */
  readonly path: string;
  readonly body?: unknown;
  readonly headers: Readonly<Record<string, string>>;
  /** The status the check expects; absent: any 2xx. */
  readonly status?: number;
  /** A JSON value the response body must contain (objects: these keys with matching values;
   *  arrays: each listed element matches some element of the answer). */
  readonly contains?: unknown;
}

export interface ValidationConfig {
  /** How often each replica re-runs the checks during a validation window. */
  readonly checkEveryMs: number;
  /** The server-error rate (0..1) that rolls a new version back during validation, unless the
   *  deploy sets its own. */
  readonly maxErrorRate?: number;
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
    /** How long an Idempotency-Key is remembered after its write applies: a retry within it
     *  applies nothing and gets the first answer. */
    readonly idempotencyWindowSeconds: number;
  };
  readonly realtime: {
    /** How many recent log entries a subscription can resume from with `?since=`. */
    readonly retainEntries: number;
  };
  readonly tables: Readonly<Record<string, TableConfig>>;
  readonly checks: readonly CheckSpec[];
  readonly validation: ValidationConfig;
  /** Per-role table permissions (Harper-style): for a role, a table and an operation, `false`
   *  denies what the role's grant would allow. They only narrow: an app cannot grant a role more
   *  than the cluster did (or an agent that may deploy it could widen its own access). */
  readonly roles: Readonly<Record<string, Readonly<Record<string, TablePermissions>>>>;
}

export interface TablePermissions {
  readonly read?: boolean;
  readonly write?: boolean;
  readonly subscribe?: boolean;
}

export const defaultConfig: AppConfig = {
  rest: { bodyBytesMax: 1024 * 1024, allowScan: false, queryResultsMax: 10_000, idempotencyWindowSeconds: 3_600 },
  realtime: { retainEntries: 10_000 },
  tables: {},
  checks: [],
  validation: { checkEveryMs: 2_000 },
  roles: {},
};

/** At most this many checks: every replica runs them all before it reports `prepared`. */
export const checksMax = 32;

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
        idempotencyWindowSeconds: { type: 'integer', minimum: 1, maximum: 7 * 24 * 3_600 },
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
    checks: {
      type: 'array',
      maxItems: checksMax,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200 },
          method: { enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] },
          path: { type: 'string', pattern: '^/[^/?#]+(/[^?#]*)?(\\?.*)?$', maxLength: 2048 },
          body: {},
          headers: { type: 'object', additionalProperties: { type: 'string' } },
          status: { type: 'integer', minimum: 100, maximum: 599 },
          contains: {},
        },
      },
    },
    validation: {
      type: 'object',
      additionalProperties: false,
      properties: {
        checkEveryMs: { type: 'integer', minimum: 100, maximum: 3_600_000 },
        maxErrorRate: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
      },
    },
    roles: {
      type: 'object',
      maxProperties: 64,
      propertyNames: { pattern: '^[a-z][a-z0-9_-]{0,31}$' },
      additionalProperties: {
        type: 'object',
        maxProperties: 256,
        propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,62}$' },
        additionalProperties: {
          type: 'object',
          additionalProperties: false,
          properties: { read: { type: 'boolean' }, write: { type: 'boolean' }, subscribe: { type: 'boolean' } },
        },
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
  const given = raw as {
    name?: string;
    rest?: Partial<AppConfig['rest']>;
    realtime?: Partial<AppConfig['realtime']>;
    tables?: Record<string, TableConfig>;
    checks?: GivenCheck[];
    validation?: Partial<ValidationConfig>;
    roles?: AppConfig['roles'];
  };
  return {
    ...(given.name === undefined ? {} : { name: given.name }),
    rest: { ...defaultConfig.rest, ...given.rest },
    realtime: { ...defaultConfig.realtime, ...given.realtime },
    tables: given.tables ?? {},
    checks: checksOf(given.checks ?? []),
    validation: { ...defaultConfig.validation, ...given.validation },
    roles: given.roles ?? {},
  };
}

interface GivenCheck {
  name?: string;
  method?: CheckSpec['method'];
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  status?: number;
  contains?: unknown;
}

function checksOf(given: readonly GivenCheck[]): CheckSpec[] {
  const names = new Set<string>();
  return given.map((check, position) => {
    const method = check.method ?? 'GET';
    const name = check.name ?? `${method} ${check.path}`;
    if (names.has(name)) throw new ConfigError(`config.yaml: checks.${position}: another check is already named '${name}'`);
    names.add(name);
    if (check.body !== undefined && (method === 'GET' || method === 'DELETE')) {
      throw new ConfigError(`config.yaml: checks.${position} (${name}): a ${method} check takes no body`);
    }
    return {
      name,
      method,
      path: check.path,
      headers: check.headers ?? {},
      ...(check.body === undefined ? {} : { body: check.body }),
      ...(check.status === undefined ? {} : { status: check.status }),
      ...(check.contains === undefined ? {} : { contains: check.contains }),
    };
  });
}

function describe(error: ErrorObject): string {
  const where = error.instancePath === '' ? '(top level)' : error.instancePath.slice(1).replaceAll('/', '.');
  if (error.keyword === 'additionalProperties') {
    return `${where}: unknown option '${String((error.params as { additionalProperty: string }).additionalProperty)}'`;
  }
  return `${where}: ${error.message ?? 'is invalid'}`;
}
