// Reading directive arguments from an already validated AST. graphql's ValuesOfCorrectTypeRule
// has checked every argument against the prelude, so the value kinds here are the declared ones.

import { Kind, type ConstDirectiveNode, type ConstValueNode } from 'graphql';

export interface DirectiveHolder {
  readonly directives?: readonly ConstDirectiveNode[] | undefined;
}

export function findDirective(holder: DirectiveHolder, name: string): ConstDirectiveNode | undefined {
  return holder.directives?.find((directive) => directive.name.value === name);
}

function argumentValue(directive: ConstDirectiveNode, name: string): ConstValueNode | undefined {
  const value = directive.arguments?.find((argument) => argument.name.value === name)?.value;
  // An explicit `null` means the same as leaving the argument out.
  return value === undefined || value.kind === Kind.NULL ? undefined : value;
}

export function stringArgument(directive: ConstDirectiveNode, name: string): string | undefined {
  const value = argumentValue(directive, name);
  if (value === undefined) return undefined;
  // Harper writes @relationship(from: brandId) with a bare name; parse.ts turns such enum
  // literals into strings before validation, so only strings arrive here.
  if (value.kind !== Kind.STRING) throw new Error(`assertion: @${directive.name.value}(${name}:) is ${value.kind}, not a string`);
  return value.value;
}

export function intArgument(directive: ConstDirectiveNode, name: string): number | undefined {
  const value = argumentValue(directive, name);
  if (value === undefined) return undefined;
  if (value.kind !== Kind.INT) throw new Error(`assertion: @${directive.name.value}(${name}:) is ${value.kind}, not an Int`);
  return Number.parseInt(value.value, 10);
}

export function booleanArgument(directive: ConstDirectiveNode, name: string): boolean | undefined {
  const value = argumentValue(directive, name);
  if (value === undefined) return undefined;
  if (value.kind !== Kind.BOOLEAN) throw new Error(`assertion: @${directive.name.value}(${name}:) is ${value.kind}, not a Boolean`);
  return value.value;
}
