// Recursive-descent parser for the REST query language (a Harper-compatible subset):
//
//   query     := or                              ('&' binds tighter than '|')
//   or        := and ('|' and)*
//   and       := unary ('&' unary)*
//   unary     := '(' or ')' | call | condition
//   call      := ('sort' | 'limit' | 'select') '(' arguments ')'   only as a top-level '&' item
//   condition := name ('=' | '==' | '!=' | '=op=') value
//
// A chained range reuses the previous attribute: `price=gt=10&lt=20` (Harper's form). The parser
// knows no schema: values stay strings and are typed by the executor.

import { conditionCountMax, nestingDepthMax, queryStringLengthMax } from './limits.js';
import { querySyntaxError } from './syntax-error.js';
import { parseCondition, parseLimitArguments, parseSelectArguments, parseSortArguments, type ParsedCondition } from './term.js';
import { tokenize, type Token, type TokenKind } from './tokens.js';
import type { Filter, Operator, Query, SortKey } from './types.js';

type CallName = 'sort' | 'limit' | 'select';

type Node =
  | { readonly kind: 'cond'; readonly condition: ParsedCondition }
  | { readonly kind: 'and' | 'or'; readonly items: readonly Node[]; readonly grouped: boolean }
  | { readonly kind: 'call'; readonly name: CallName; readonly argumentsText: string; readonly argumentsPosition: number; readonly position: number };

const lowerBoundOps: ReadonlySet<Operator> = new Set(['gt', 'ge']);
const upperBoundOps: ReadonlySet<Operator> = new Set(['lt', 'le']);

function isCallName(name: string): name is CallName {
  return name === 'sort' || name === 'limit' || name === 'select';
}

function rangeOperator(name: string): Operator | undefined {
  return name === 'gt' || name === 'ge' || name === 'lt' || name === 'le' ? name : undefined;
}

class Parser {
  private index = 0;
  private conditionCount = 0;

  constructor(
    private readonly tokens: readonly Token[],
    private readonly endPosition: number,
  ) {}

  parseRoot(): Node | undefined {
    if (this.tokens.length === 0) return undefined;
    const root = this.parseOr(0);
    const extra = this.tokens[this.index];
    if (extra !== undefined) throw querySyntaxError(`unexpected '${extra.text}'`, extra.position);
    return root;
  }

  private peek(kind: TokenKind): boolean {
    return this.tokens[this.index]?.kind === kind;
  }

  private parseOr(depth: number): Node {
    const items = [this.parseAnd(depth)];
    while (this.peek('|')) {
      this.index++;
      items.push(this.parseAnd(depth));
    }
    return items.length === 1 && items[0] !== undefined ? items[0] : { kind: 'or', items, grouped: false };
  }

  private parseAnd(depth: number): Node {
    const items = [this.parseUnary(depth)];
    while (this.peek('&')) {
      this.index++;
      const next = this.parseUnary(depth);
      items.push(chainRange(items[items.length - 1], next));
    }
    return items.length === 1 && items[0] !== undefined ? items[0] : { kind: 'and', items, grouped: false };
  }

  private parseUnary(depth: number): Node {
    const token = this.tokens[this.index];
    if (token === undefined) throw querySyntaxError('unexpected end of query', this.endPosition);
    this.index++;
    if (token.kind === '(') {
      if (depth + 1 > nestingDepthMax) throw querySyntaxError(`parentheses nested deeper than ${nestingDepthMax}`, token.position);
      const inner = this.parseOr(depth + 1);
      const close = this.tokens[this.index];
      if (close?.kind !== ')') {
        throw querySyntaxError(close === undefined ? "missing ')'" : `expected ')', got '${close.text}'`, close?.position ?? this.endPosition);
      }
      this.index++;
      return inner.kind === 'and' || inner.kind === 'or' ? { ...inner, grouped: true } : inner;
    }
    if (token.kind !== 'text') throw querySyntaxError(`unexpected '${token.text}'`, token.position);
    const open = this.tokens[this.index];
    if (open?.kind === '(' && open.position === token.position + token.text.length && /^[A-Za-z]+$/.test(token.text)) {
      return this.parseCall(token);
    }
    this.conditionCount++;
    if (this.conditionCount > conditionCountMax) throw querySyntaxError(`more than ${conditionCountMax} conditions`, token.position);
    return { kind: 'cond', condition: parseCondition(token.text, token.position) };
  }

  private parseCall(nameToken: Token): Node {
    const name = nameToken.text;
    if (!isCallName(name)) throw querySyntaxError(`unknown function '${name}()'`, nameToken.position);
    this.index++; // the '(' checked by the caller
    let argumentsText = '';
    let argumentsPosition = nameToken.position + name.length + 1;
    const argumentsToken = this.tokens[this.index];
    if (argumentsToken?.kind === 'text') {
      argumentsText = argumentsToken.text;
      argumentsPosition = argumentsToken.position;
      this.index++;
    }
    const close = this.tokens[this.index];
    if (close?.kind !== ')') {
      throw querySyntaxError(close === undefined ? `missing ')' after ${name}(` : `expected ')' in ${name}(), got '${close.text}'`, close?.position ?? this.endPosition);
    }
    this.index++;
    if (argumentsText.length === 0) throw querySyntaxError(`${name}() needs arguments`, argumentsPosition);
    return { kind: 'call', name, argumentsText, argumentsPosition, position: nameToken.position };
  }
}

/** Harper's chained range: after `price=gt=10`, a following `&lt=20` means `price=lt=20`. Only a
 *  bound of the opposite side chains, so `a=gt=1&gt=2` stays a condition on an attribute `gt`. */
function chainRange(previous: Node | undefined, next: Node): Node {
  if (previous?.kind !== 'cond' || next.kind !== 'cond' || !next.condition.plainForm) return next;
  const op = rangeOperator(next.condition.attribute);
  if (op === undefined) return next;
  const previousOp = previous.condition.op;
  const opposite = (lowerBoundOps.has(previousOp) && upperBoundOps.has(op)) || (upperBoundOps.has(previousOp) && lowerBoundOps.has(op));
  if (!opposite) return next;
  return { kind: 'cond', condition: { ...next.condition, attribute: previous.condition.attribute, op, plainForm: false } };
}

function toFilter(node: Node): Filter {
  switch (node.kind) {
    case 'cond': {
      const { attribute, op, value } = node.condition;
      return { kind: 'cond', attribute, op, value };
    }
    case 'and':
    case 'or': {
      const items: Filter[] = [];
      for (const item of node.items) {
        const filter = toFilter(item);
        // (a&b)&c is a&b&c: flattening gives the planner every AND condition in one list.
        if (filter.kind === node.kind) items.push(...filter.items);
        else items.push(filter);
      }
      return { kind: node.kind, items };
    }
    case 'call':
      throw querySyntaxError(`${node.name}() must be a top-level item joined with '&'`, node.position);
  }
}

export function parseQuery(queryString: string): Query {
  if (queryString.length > queryStringLengthMax) {
    throw querySyntaxError(`query string longer than ${queryStringLengthMax} characters`, queryStringLengthMax);
  }
  const root = new Parser(tokenize(queryString), queryString.length).parseRoot();
  if (root === undefined) return { sort: [], offset: 0 };

  const topItems = root.kind === 'and' && !root.grouped ? root.items : [root];
  const conditions: Node[] = [];
  let sort: SortKey[] | undefined;
  let limit: { offset: number; limit: number } | undefined;
  let select: string[] | undefined;
  for (const item of topItems) {
    if (item.kind !== 'call') {
      conditions.push(item);
      continue;
    }
    const twice = () => querySyntaxError(`${item.name}() given twice`, item.position);
    switch (item.name) {
      case 'sort':
        if (sort !== undefined) throw twice();
        sort = parseSortArguments(item.argumentsText, item.argumentsPosition);
        break;
      case 'limit':
        if (limit !== undefined) throw twice();
        limit = parseLimitArguments(item.argumentsText, item.argumentsPosition);
        break;
      case 'select':
        if (select !== undefined) throw twice();
        select = parseSelectArguments(item.argumentsText, item.argumentsPosition);
        break;
    }
  }

  const [onlyCondition] = conditions;
  const filter =
    conditions.length === 0 ? undefined : conditions.length === 1 && onlyCondition !== undefined ? toFilter(onlyCondition) : toFilter({ kind: 'and', items: conditions, grouped: false });
  return {
    ...(filter === undefined ? {} : { filter }),
    sort: sort ?? [],
    offset: limit?.offset ?? 0,
    ...(limit === undefined ? {} : { limit: limit.limit }),
    ...(select === undefined ? {} : { select }),
  };
}
