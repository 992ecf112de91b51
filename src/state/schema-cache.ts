// Parsed schemas of an app's staged versions. The state machine needs the table definitions of
// the active version (primary keys, indexes, timestamps); parsing is deterministic, so caching
// the result per version changes nothing but speed.
import type { AppVersion } from '../model/ids.js';
import { parseSchema, type SchemaDef } from '../schema/index.js';
import type { AppStore } from '../storage/app-store.js';

export const schemaFileName = 'schema.graphql';

export class SchemaCache {
  private readonly parsed = new Map<AppVersion, SchemaDef>();

  constructor(private readonly store: AppStore) {}

  forVersion(version: AppVersion): SchemaDef {
    let schema = this.parsed.get(version);
    if (schema === undefined) {
      const record = this.store.versions.get(version);
      if (record === undefined) throw new Error(`schema of version ${version} requested, but it was never staged`);
      schema = parseSchema(record.bundle.files[schemaFileName] ?? '');
      this.parsed.set(version, schema);
    }
    return schema;
  }
}
