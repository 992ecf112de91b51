// Splits a raw query string into structural characters and text runs. Structure is recognised
// before percent-decoding, so an encoded '&' (%26) or '(' (%28) is part of a value, never syntax.

export type TokenKind = '&' | '|' | '(' | ')' | 'text';

export interface Token {
  readonly kind: TokenKind;
  /** The raw, still percent-encoded text; for structural tokens, the character itself. */
  readonly text: string;
  /** 0-based offset of the token's first character in the query string. */
  readonly position: number;
}

function structuralKind(char: string): TokenKind | undefined {
  switch (char) {
    case '&':
    case '|':
    case '(':
    case ')':
      return char;
    default:
      return undefined;
  }
}

export function tokenize(queryString: string): Token[] {
  const tokens: Token[] = [];
  let runStart = 0;
  for (let index = 0; index <= queryString.length; index++) {
    const kind = index < queryString.length ? structuralKind(queryString.charAt(index)) : undefined;
    if (kind === undefined && index < queryString.length) continue;
    if (index > runStart) tokens.push({ kind: 'text', text: queryString.slice(runStart, index), position: runStart });
    if (kind !== undefined) tokens.push({ kind, text: kind, position: index });
    runStart = index + 1;
  }
  return tokens;
}
