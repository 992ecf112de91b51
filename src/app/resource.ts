// The classes app code extends. `Resource` is a REST endpoint; `tables.X` is the Resource of
// table X, whose default methods read and write that table. Static methods on `tables.X`
// (get/put/patch/delete/create/search) run inside the current request's transaction, found
// through AsyncLocalStorage, so app code can touch several tables and stay in one write set.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { RecordId, StoredRecord } from '../model/app-entries.js';
import { Problem } from '../model/problem.js';
import { parseQuery } from '../query/parse.js';
import type { Query } from '../query/types.js';
import type { TableDef } from '../schema/index.js';
import type { Transaction } from './transaction.js';

/** What a REST request addresses. */
export interface Target {
  /** The record id for record paths; undefined for the collection path. */
  readonly id?: RecordId;
  /** The parsed query of a collection GET. */
  readonly query: Query;
  readonly pathname: string;
}

/** Details of the HTTP request, for app code that needs them. */
export interface RequestInfo {
  readonly method: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

interface RequestScope {
  readonly transaction: Transaction;
  readonly request: RequestInfo;
}

const scopeStorage = new AsyncLocalStorage<RequestScope>();

export function runInScope<T>(transaction: Transaction, request: RequestInfo, body: () => T): T {
  return scopeStorage.run({ transaction, request }, body);
}

function currentScope(): RequestScope {
  const scope = scopeStorage.getStore();
  if (scope === undefined) throw new Error('table access outside of a request: lockstep tables can only be used while handling one');
  return scope;
}

export const restMethods = ['get', 'put', 'patch', 'post', 'delete'] as const;
export type RestMethod = (typeof restMethods)[number];

function notAllowed(method: string): never {
  throw new Problem('method-not-allowed', { detail: `${method.toUpperCase()} is not supported here` });
}

/** Base of every endpoint. A method an endpoint does not override answers 405. */
export class Resource {
  get request(): RequestInfo {
    return currentScope().request;
  }
  get(_target: Target): unknown {
    return notAllowed('get');
  }
  put(_target: Target, _body: unknown): unknown {
    return notAllowed('put');
  }
  patch(_target: Target, _body: unknown): unknown {
    return notAllowed('patch');
  }
  post(_target: Target, _body: unknown): unknown {
    return notAllowed('post');
  }
  delete(_target: Target): unknown {
    return notAllowed('delete');
  }
  /** Which methods this endpoint answers, for `Allow` (those overridden below Resource). */
  static allowedMethods(this: typeof Resource): RestMethod[] {
    return restMethods.filter((method) => this.prototype[method] !== Resource.prototype[method]);
  }
}

export type ResourceClass = typeof Resource;

export interface TableClass extends ResourceClass {
  readonly table: TableDef;
  get(id: RecordId): Promise<StoredRecord | undefined>;
  put(id: RecordId, record: StoredRecord): Promise<void>;
  patch(id: RecordId, partial: StoredRecord): Promise<void>;
  delete(id: RecordId): Promise<boolean>;
  create(record: StoredRecord): Promise<RecordId>;
  search(query?: string | Query): Promise<StoredRecord[]>;
}

function requireRecord(body: unknown): StoredRecord {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new Problem('invalid', { detail: 'the body must be an object (one record)' });
  }
  return body as StoredRecord;
}

function requireId(target: Target, method: string): RecordId {
  if (target.id === undefined) throw new Problem('method-not-allowed', { detail: `${method} needs a record path (/<Table>/<id>)`, headers: { Allow: 'GET, POST' } });
  return target.id;
}

/** Builds the Resource class of one table for one app version. */
export function makeTableClass(table: TableDef): TableClass {
  const transaction = (): Transaction => currentScope().transaction;
  const TableResource = class extends Resource {
    static readonly table = table;

    // Static API for app code: the table inside the current transaction.
    static async get(id: RecordId): Promise<StoredRecord | undefined> {
      return transaction().get(table, id);
    }
    static async put(id: RecordId, record: StoredRecord): Promise<void> {
      transaction().put(table, id, record);
    }
    static async patch(id: RecordId, partial: StoredRecord): Promise<void> {
      transaction().patch(table, id, partial);
    }
    static async delete(id: RecordId): Promise<boolean> {
      return transaction().delete(table, id);
    }
    static async create(record: StoredRecord): Promise<RecordId> {
      return transaction().create(table, record);
    }
    static async search(query?: string | Query): Promise<StoredRecord[]> {
      const parsed = typeof query === 'string' ? parseQuery(query) : (query ?? { sort: [], offset: 0 });
      return transaction().search(table, parsed);
    }

    // REST handlers: what /<app>/<Table>/... does unless app code overrides them.
    override get(target: Target): unknown {
      if (target.id === undefined) return transaction().search(table, target.query);
      return transaction().get(table, target.id);
    }
    override put(target: Target, body: unknown): unknown {
      transaction().put(table, requireId(target, 'PUT'), requireRecord(body));
      return undefined;
    }
    override patch(target: Target, body: unknown): unknown {
      transaction().patch(table, requireId(target, 'PATCH'), requireRecord(body));
      return undefined;
    }
    override post(target: Target, body: unknown): unknown {
      if (target.id !== undefined) throw new Problem('method-not-allowed', { detail: 'POST creates records on the collection path', headers: { Allow: 'GET, PUT, PATCH, DELETE' } });
      return { [table.primaryKey]: transaction().create(table, requireRecord(body)) };
    }
    override delete(target: Target): unknown {
      if (target.id === undefined) {
        // The records the filter matches, deleted in one write set (one log entry): a concurrent
        // change to one of them makes the request run again. Bounded like any query.
        if (target.query.filter === undefined) {
          throw new Problem('invalid', { detail: `DELETE on the ${table.exportName} collection needs a filter (?attribute=value ...); deleting every record this way is not offered` });
        }
        const matched = transaction().search(table, { ...target.query, select: undefined });
        for (const record of matched) transaction().delete(table, record[table.primaryKey] as RecordId);
        return { deleted: matched.length };
      }
      const existed = transaction().delete(table, requireId(target, 'DELETE'));
      if (!existed) throw new Problem('not-found', { detail: `${table.exportName}/${String(target.id)} does not exist` });
      return undefined;
    }
  };
  Object.defineProperty(TableResource, 'name', { value: table.name });
  return TableResource as unknown as TableClass;
}
