// The leaves of the query grammar: one condition (`price=gt=10`) or the arguments of one
// function call (`sort(+a,-b)`, `limit(10)`, `select(a,b)`), each given as raw text plus its offset.

import { attributeNameLengthMax, limitValueMax, selectAttributeCountMax, sortKeyCountMax } from './limits.js';
import { querySyntaxError } from './syntax-error.js';
import type { Operator, SortKey } from './types.js';

export interface ParsedCondition {
  readonly attribute: string;
  readonly op: Operator;
  readonly value: string;
  /** Written as `name=value` (single '='): the only form that can be a chained range (`&lt=20`). */
  readonly plainForm: boolean;
  readonly position: number;
}

const operatorWords: Readonly<Record<string, Operator>> = {
  eq: 'eq', ne: 'ne', gt: 'gt', ge: 'ge', lt: 'lt', le: 'le', sw: 'sw', ew: 'ew', ct: 'ct',
};

// GraphQL field names, which is what a schema attribute is.
const attributeNamePattern = /^[_A-Za-z][_0-9A-Za-z]*$/;

export function decodeComponent(raw: string, position: number): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw querySyntaxError(`malformed percent-encoding in '${raw}'`, position);
  }
}

export function parseAttributeName(raw: string, position: number): string {
  return validateAttributeName(decodeComponent(raw, position), position);
}

function validateAttributeName(name: string, position: number): string {
  if (name.length === 0) throw querySyntaxError('missing attribute name', position);
  if (name.length > attributeNameLengthMax) {
    throw querySyntaxError(`attribute name longer than ${attributeNameLengthMax} characters`, position);
  }
  if (name.includes('.')) {
    throw querySyntaxError(`nested attribute path '${name}' is not supported`, position);
  }
  if (!attributeNamePattern.test(name)) throw querySyntaxError(`invalid attribute name '${name}'`, position);
  return name;
}

/** `name=value`, `name==value`, `name==prefix*`, `name!=value`, `name=op=value`. */
export function parseCondition(text: string, position: number): ParsedCondition {
  const operatorStart = text.search(/[=!]/);
  if (operatorStart < 0) throw querySyntaxError(`expected a condition like 'name=value', got '${text}'`, position);
  const attribute = parseAttributeName(text.slice(0, operatorStart), position);
  const rest = text.slice(operatorStart);
  const operatorPosition = position + operatorStart;

  let op: Operator;
  let valueOffset: number;
  let plainForm = false;
  let starIsPrefix = false;
  const fiql = /^=([A-Za-z]+)=/.exec(rest);
  if (rest.startsWith('!=')) {
    op = 'ne';
    valueOffset = 2;
  } else if (rest.startsWith('==')) {
    // FIQL equality; Harper reads a trailing unencoded '*' as "starts with".
    op = 'eq';
    valueOffset = 2;
    starIsPrefix = true;
  } else if (fiql !== null) {
    const word = fiql[1] ?? '';
    const mapped = operatorWords[word.toLowerCase()];
    if (mapped === undefined) throw querySyntaxError(`unsupported operator '=${word}='`, operatorPosition);
    op = mapped;
    valueOffset = fiql[0].length;
  } else if (rest.startsWith('=')) {
    op = 'eq';
    valueOffset = 1;
    plainForm = true;
  } else {
    throw querySyntaxError(`unexpected '${rest.charAt(0)}' after attribute '${attribute}'`, operatorPosition);
  }

  let rawValue = rest.slice(valueOffset);
  const valuePosition = operatorPosition + valueOffset;
  const stray = rawValue.indexOf('=');
  if (stray >= 0) {
    // Catches `price=gt=10=lt=20` and unencoded '=' in values alike; Harper's chained form is
    // `price=gt=10&lt=20`, and a literal '=' must be sent as %3D (encodeURIComponent does that).
    throw querySyntaxError(
      `unexpected '=' in the value of '${attribute}' (percent-encode it as %3D, or chain a range as '${attribute}=gt=1&lt=9')`,
      valuePosition + stray,
    );
  }
  if (starIsPrefix && rawValue.endsWith('*')) {
    op = 'sw';
    rawValue = rawValue.slice(0, -1);
  }
  return { attribute, op, value: decodeComponent(rawValue, valuePosition), plainForm, position };
}

function splitArguments(text: string, position: number): { raw: string; position: number }[] {
  const parts: { raw: string; position: number }[] = [];
  let offset = 0;
  for (const raw of text.split(',')) {
    parts.push({ raw, position: position + offset });
    offset += raw.length + 1;
  }
  return parts;
}

export function parseSortArguments(text: string, position: number): SortKey[] {
  const keys: SortKey[] = [];
  for (const argument of splitArguments(text, position)) {
    const decoded = decodeComponent(argument.raw, argument.position);
    const sign = decoded.charAt(0);
    const descending = sign === '-';
    const name = sign === '-' || sign === '+' ? decoded.slice(1) : decoded;
    const attribute = validateAttributeName(name, argument.position);
    if (keys.some((key) => key.attribute === attribute)) {
      throw querySyntaxError(`attribute '${attribute}' appears twice in sort()`, argument.position);
    }
    keys.push({ attribute, descending });
    if (keys.length > sortKeyCountMax) throw querySyntaxError(`more than ${sortKeyCountMax} sort keys`, argument.position);
  }
  return keys;
}

export interface LimitArguments {
  readonly offset: number;
  readonly limit: number;
}

/** `limit(end)` or `limit(start,end)`: records [start, end), so `limit(10,20)` returns ten. */
export function parseLimitArguments(text: string, position: number): LimitArguments {
  const numbers = splitArguments(text, position).map((argument) => {
    if (!/^[0-9]+$/.test(argument.raw)) {
      throw querySyntaxError(`limit() takes non-negative integers, got '${argument.raw}'`, argument.position);
    }
    const value = Number(argument.raw);
    if (value > limitValueMax) throw querySyntaxError(`limit() argument above ${limitValueMax}`, argument.position);
    return value;
  });
  const [first, second] = numbers;
  if (numbers.length > 2 || first === undefined) {
    throw querySyntaxError('limit() takes one or two arguments', position);
  }
  if (second === undefined) return { offset: 0, limit: first };
  if (second < first) throw querySyntaxError(`limit(${first},${second}) ends before it starts`, position);
  return { offset: first, limit: second - first };
}

export function parseSelectArguments(text: string, position: number): string[] {
  const names: string[] = [];
  for (const argument of splitArguments(text, position)) {
    const name = parseAttributeName(argument.raw, argument.position);
    if (!names.includes(name)) names.push(name);
    if (names.length > selectAttributeCountMax) {
      throw querySyntaxError(`more than ${selectAttributeCountMax} attributes in select()`, argument.position);
    }
  }
  return names;
}
