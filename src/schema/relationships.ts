// Checks each @relationship against the tables it connects, once every table is built:
// `from` names a stored attribute of this table holding the other record's key (a list of keys
// for a list relationship); `to` names a stored attribute of the target table holding this
// record's key, and so always resolves to a list.

import { innermostType } from './attributes.js';
import type { ProblemList } from './problems.js';
import type { BuiltType } from './tables.js';
import { formatTypeRef, isPrimaryKeyScalarName, type AttributeDef, type TableDef, type TypeRef } from './types.js';

export function checkRelationships(tables: ReadonlyMap<string, BuiltType<TableDef>>, problems: ProblemList): void {
  for (const table of tables.values()) {
    for (const attribute of table.def.attributes) {
      if (attribute.relationship === undefined) continue;
      const target = innermostType(attribute.type);
      const targetTable = target.kind === 'object' ? tables.get(target.name)?.def : undefined;
      // attributes.ts already reported a relationship to something that is not a table.
      if (targetTable === undefined) continue;
      const node = table.fieldNodes.get(attribute.name);
      const label = `${table.def.name}.${attribute.name}`;
      const report = (message: string): void => problems.add(node, `${label}: ${message}`);
      const { from, to } = attribute.relationship;
      // attributes.ts reported a relationship without exactly one of from: and to:.
      if ((from === undefined) === (to === undefined)) continue;
      if (from !== undefined) {
        const keyAttribute = table.def.attributesByName.get(from);
        const problem = keyAttribute === undefined
          ? `@relationship(from: "${from}"): ${table.def.name} has no attribute ${from}`
          : keyProblem(keyAttribute, attribute.type.kind === 'list', targetTable);
        if (problem !== undefined) report(problem);
      }
      if (to !== undefined) {
        if (attribute.type.kind !== 'list') {
          report(`@relationship(to: "${to}") resolves every ${targetTable.name} that points here, so declare it as a list: [${targetTable.name}]`);
        }
        const backAttribute = targetTable.attributesByName.get(to);
        const problem = backAttribute === undefined
          ? `@relationship(to: "${to}"): ${targetTable.name} has no attribute ${to}`
          : keyProblem(backAttribute, backAttribute.type.kind === 'list', table.def);
        if (problem !== undefined) report(problem);
      }
    }
  }
}

/** Whether `keyAttribute` can hold primary keys of `keyedTable` (a list of them if `many`). */
function keyProblem(keyAttribute: AttributeDef, many: boolean, keyedTable: TableDef): string | undefined {
  if (keyAttribute.relationship !== undefined) return `${keyAttribute.name} is itself a @relationship; it must be a stored key attribute`;
  let element: TypeRef | undefined = keyAttribute.type;
  if (many) element = keyAttribute.type.kind === 'list' ? keyAttribute.type.of : undefined;
  const isKeyScalar = element !== undefined && element.kind === 'scalar' && isPrimaryKeyScalarName(element.name);
  if (isKeyScalar) return undefined;
  const expected = many ? `a list of ${keyedTable.name} keys ([${keyedTable.primaryKeyType}])` : `a ${keyedTable.name} key (${keyedTable.primaryKeyType})`;
  return `${keyAttribute.name} is ${formatTypeRef(keyAttribute.type)}; it must hold ${expected}`;
}
