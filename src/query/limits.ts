// Bounds on what one query may ask for. A query string is attacker-controlled input that drives
// recursion (parentheses) and per-record work (conditions), so each dimension has a ceiling.

/** Longer query strings are refused before parsing; 8 KiB matches common proxy URL limits. */
export const queryStringLengthMax = 8 * 1024;
/** Parenthesis nesting; the parser recurses once per level. */
export const nestingDepthMax = 8;
/** Conditions in one filter; each one is evaluated against every candidate record. */
export const conditionCountMax = 64;
export const sortKeyCountMax = 8;
export const selectAttributeCountMax = 256;
export const attributeNameLengthMax = 128;
/** limit() arguments above this are refused: they are record counts, not byte offsets. */
export const limitValueMax = 1_000_000_000;
