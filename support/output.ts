// How the CLI prints: every command writes lines through an `Out`, so tests and the in-place progress
// line can stand in for stdout.

export type Out = (line: string) => void;

/** Prints `key  value` rows with the values aligned (status, local and AWS). */
export function printRows(rows: ReadonlyArray<readonly [string, string]>, out: Out): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) out(`${k.padEnd(width)}  ${v}`);
}
