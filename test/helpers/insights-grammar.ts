// A small grammar check for Logs Insights QL, since moto (and CloudFormation) accept any query
// text. It checks what our saved queries use against the documented language
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html and the pages it
// links: "Boolean, comparison, numeric, datetime, and other functions", "stats"):
//   - every command (the text between top-level `|`) starts with a documented command name;
//   - every function call `name(` is a documented function;
//   - aggregation functions (`sum`, `count`, `pct`, ...) appear only in `stats`;
//   - comparison operators (`=`, `!=`, `<`, `<=`, `>`, `>=`, `=~`, `like`, `in`) appear only in
//     `filter` / `filterIndex`, never in `stats`/`fields`/`sort`/... (so no `sum(status >= 500)`).
// String, regex and backtick literals are skipped (a `|` or `>=` inside them is text), and `#`
// starts a comment. It is not a full parser: it is the set of rules the saved queries must keep.

/** Commands in the Logs Insights QL reference. */
export const LOGS_INSIGHTS_COMMANDS = [
  'anomaly',
  'dedup',
  'diff',
  'display',
  'fields',
  'filter',
  'filterIndex',
  'limit',
  'lookup',
  'parse',
  'pattern',
  'sort',
  'SOURCE',
  'stats',
  'unmask',
  'unnest',
] as const;

/** Functions only `stats` may use: the aggregation and the non-aggregation stats functions. */
export const LOGS_INSIGHTS_STATS_FUNCTIONS = [
  // aggregation
  'avg',
  'count',
  'count_distinct',
  'max',
  'min',
  'pct',
  'stddev',
  'sum',
  // non-aggregation
  'earliest',
  'latest',
  'sortsFirst',
  'sortsLast',
] as const;

/** Functions usable in any command (numeric, datetime, general, JSON, IP address, string). */
export const LOGS_INSIGHTS_GENERAL_FUNCTIONS = [
  // numeric
  'abs',
  'ceil',
  'floor',
  'greatest',
  'least',
  'log',
  'sqrt',
  // datetime
  'bin',
  'datefloor',
  'dateceil',
  'fromMillis',
  'toMillis',
  'now',
  // general
  'ispresent',
  'coalesce',
  // JSON
  'jsonParse',
  'jsonStringify',
  // IP address
  'isValidIp',
  'isValidIpV4',
  'isValidIpV6',
  'isIpInSubnet',
  'isIpv4InSubnet',
  'isIpv6InSubnet',
  // string
  'isempty',
  'isblank',
  'concat',
  'ltrim',
  'rtrim',
  'trim',
  'strlen',
  'toupper',
  'tolower',
  'substr',
  'replace',
  'strcontains',
] as const;

/** Commands whose conditions may compare. */
const COMPARING_COMMANDS = new Set(['filter', 'filterindex']);
const COMMANDS = new Set(LOGS_INSIGHTS_COMMANDS.map((c) => c.toLowerCase()));
const STATS_FUNCTIONS = new Set(LOGS_INSIGHTS_STATS_FUNCTIONS.map((f) => f.toLowerCase()));
const GENERAL_FUNCTIONS = new Set(LOGS_INSIGHTS_GENERAL_FUNCTIONS.map((f) => f.toLowerCase()));
const COMPARISON_WORDS = new Set(['like', 'in']);

type Token =
  | { kind: 'word'; text: string }
  | { kind: 'literal'; text: string }
  | { kind: 'op'; text: string }
  | { kind: 'pipe'; text: '|' };

/** Tokens of the whole query; throws on an unterminated literal. */
export function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  // A `/` starts a regex unless it follows an operand (a word, a literal or a closing paren);
  // `parse <field> /regex/` is the one place a regex follows a word.
  const regexMayStart = (): boolean => {
    const prev = tokens[tokens.length - 1];
    if (!prev || prev.kind === 'pipe') return true;
    if (prev.kind === 'op') return prev.text !== ')';
    if (prev.kind === 'word') {
      if (COMPARISON_WORDS.has(prev.text.toLowerCase()) || ['and', 'or', 'not', 'as'].includes(prev.text.toLowerCase()))
        return true;
      // `parse @message /.../`: the word before the field is the command name `parse`.
      const before = tokens[tokens.length - 2];
      const commandStart = tokens.length === 2 || tokens[tokens.length - 3]?.kind === 'pipe';
      return commandStart && before?.kind === 'word' && before.text.toLowerCase() === 'parse';
    }
    return false;
  };
  const quoted = (close: string): string => {
    const start = i;
    i++;
    while (i < query.length && query[i] !== close) i += query[i] === '\\' ? 2 : 1;
    if (i >= query.length)
      throw new Error(`unterminated ${close} literal at offset ${start}: ${query.slice(start, start + 30)}`);
    i++;
    return query.slice(start, i);
  };
  while (i < query.length) {
    const c = query[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < query.length && query[i] !== '\n') i++;
    } else if (c === '|') {
      tokens.push({ kind: 'pipe', text: '|' });
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      tokens.push({ kind: 'literal', text: quoted(c) });
    } else if (c === '/' && regexMayStart()) {
      tokens.push({ kind: 'literal', text: quoted('/') });
    } else if (/[A-Za-z0-9_@$.]/.test(c)) {
      const m = query.slice(i).match(/^[A-Za-z0-9_@$.]+/)!;
      tokens.push({ kind: 'word', text: m[0] });
      i += m[0].length;
    } else {
      const m = query.slice(i).match(/^(>=|<=|!=|=~|[=<>(),*+\-/%^])/);
      if (!m) throw new Error(`unexpected character "${c}" at offset ${i}`);
      tokens.push({ kind: 'op', text: m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

/** The problems in `query` against the documented grammar; [] when it keeps every rule. */
export function checkInsightsQuery(query: string): string[] {
  let tokens: Token[];
  try {
    tokens = tokenize(query);
  } catch (err) {
    return [(err as Error).message];
  }
  const commands: Token[][] = [[]];
  for (const t of tokens) {
    if (t.kind === 'pipe') commands.push([]);
    else commands[commands.length - 1].push(t);
  }
  const problems: string[] = [];
  commands.forEach((command, n) => {
    const [head, ...rest] = command;
    if (!head) {
      problems.push(`command ${n + 1} is empty`);
      return;
    }
    const name = head.text;
    if (head.kind !== 'word' || !COMMANDS.has(name.toLowerCase())) {
      problems.push(`command ${n + 1}: "${name}" is not a Logs Insights command`);
      return;
    }
    let depth = 0;
    rest.forEach((t, k) => {
      if (t.kind === 'op' && t.text === '(') depth++;
      if (t.kind === 'op' && t.text === ')') depth--;
      if (depth < 0) problems.push(`${name}: unbalanced ")"`);
      const next = rest[k + 1];
      if (t.kind === 'word' && next?.kind === 'op' && next.text === '(') {
        const fn = t.text.toLowerCase();
        if (STATS_FUNCTIONS.has(fn)) {
          if (name.toLowerCase() !== 'stats')
            problems.push(`${name}: ${t.text}() is a stats function, only stats may use it`);
        } else if (!GENERAL_FUNCTIONS.has(fn)) {
          problems.push(`${name}: ${t.text}() is not a documented Logs Insights function`);
        }
      }
      const comparison =
        (t.kind === 'op' && ['=', '!=', '<', '<=', '>', '>=', '=~'].includes(t.text)) ||
        (t.kind === 'word' && COMPARISON_WORDS.has(t.text.toLowerCase()));
      if (comparison && !COMPARING_COMMANDS.has(name.toLowerCase())) {
        problems.push(
          `${name}: comparison "${t.text}" outside filter (comparisons belong to filter, not ${name} expressions)`,
        );
      }
    });
    if (depth > 0) problems.push(`${name}: unbalanced "("`);
  });
  return problems;
}
