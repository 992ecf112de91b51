// The directives and scalars Lockstep understands, declared once so that app schemas need not
// declare them. The user's document is validated against this prelude with graphql's own rules
// (unknown types and directives, argument types, duplicates), so those errors carry graphql's
// wording and the user's line:col.

import {
  buildASTSchema,
  KnownArgumentNamesRule,
  KnownDirectivesRule,
  KnownTypeNamesRule,
  parse,
  ProvidedRequiredArgumentsRule,
  UniqueArgumentNamesRule,
  UniqueDirectivesPerLocationRule,
  UniqueFieldDefinitionNamesRule,
  UniqueTypeNamesRule,
  ValuesOfCorrectTypeRule,
  type ASTVisitor,
  type GraphQLSchema,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

export const preludeSdl = `
directive @table(expiration: Int, audit: Boolean) on OBJECT
directive @export(name: String) on OBJECT
directive @sealed on OBJECT
directive @primaryKey on FIELD_DEFINITION
directive @indexed on FIELD_DEFINITION
directive @createdTime on FIELD_DEFINITION
directive @updatedTime on FIELD_DEFINITION
directive @relationship(from: String, to: String) on FIELD_DEFINITION
scalar Long
scalar Date
scalar Any
`;

export const builtInDirectiveNames: ReadonlySet<string> = new Set([
  'table', 'export', 'sealed', 'primaryKey', 'indexed', 'createdTime', 'updatedTime', 'relationship',
]);
export const builtInScalarNamesDeclarable: ReadonlySet<string> = new Set(['Long', 'Date', 'Any']);

// The prelude has no Query type, which a servable GraphQL schema would need; assumeValid skips
// that check because this schema only ever serves as the context for SDL validation.
export const preludeSchema: GraphQLSchema = buildASTSchema(parse(preludeSdl), { assumeValid: true });

/** graphql's rules that apply to a type-definition document. */
export const sdlRules: readonly ValidationRule[] = [
  KnownTypeNamesRule,
  KnownDirectivesRule,
  UniqueDirectivesPerLocationRule,
  KnownArgumentNamesRule,
  UniqueArgumentNamesRule,
  ValuesOfCorrectTypeRule,
  ProvidedRequiredArgumentsRule,
  fromSdlRule(UniqueTypeNamesRule),
  fromSdlRule(UniqueFieldDefinitionNamesRule),
];

/** Runs a rule written for graphql's internal SDL context in the public ValidationContext.
 *  The SDL context is not exported; what these two rules read of it (getDocument, getSchema,
 *  reportError) the ValidationContext has with the same meaning. */
function fromSdlRule(rule: (context: Parameters<typeof UniqueTypeNamesRule>[0]) => ASTVisitor): ValidationRule {
  return (context: ValidationContext) => rule(context as unknown as Parameters<typeof UniqueTypeNamesRule>[0]);
}
