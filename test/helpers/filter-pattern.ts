// CloudWatch Logs term patterns (the unstructured-text kind, not JSON `{ ... }` or space-delimited
// `[ ... ]`), as AWS documents them ("Filter pattern syntax for metric filters, subscription filters,
// filter log events and Live Tail": match terms in unstructured log events): terms are
// case-sensitive; an event matches when it contains every term; a term in double quotes is matched
// as the exact phrase, spaces and punctuation included. `?term` (any of) and `-term` (exclusion) are
// not needed here and are refused rather than guessed.

/** The terms of a term pattern, quotes removed. Throws on syntax this matcher does not model. */
export function filterPatternTerms(pattern: string): string[] {
  const p = pattern.trim();
  if (p === '' || p.startsWith('{') || p.startsWith('['))
    throw new Error(`not a term pattern: ${JSON.stringify(pattern)}`);
  const terms: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of p.matchAll(re)) {
    if (m[2] !== undefined && /^[?-]/.test(m[2]))
      throw new Error(`"?" and "-" terms are not modelled: ${JSON.stringify(pattern)}`);
    if (m[2] !== undefined && m[2].includes('"')) throw new Error(`unbalanced quote in ${JSON.stringify(pattern)}`);
    terms.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]);
  }
  return terms;
}

/** Whether a log event matches a term pattern (every term occurs in it, case-sensitive). */
export function matchesFilterPattern(pattern: string, event: string): boolean {
  return filterPatternTerms(pattern).every((term) => event.includes(term));
}
