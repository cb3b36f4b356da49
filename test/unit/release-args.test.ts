// `bluegreen release` / `history` argument parsing, the history table, and the CLI's exit codes for bad input.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../core/config-error';
import { REPO_ROOT } from '../../local/paths';
import type { ReleaseRecord } from '../../core/release-record';
import {
  DEFAULT_BAKE_SECONDS,
  DEFAULT_CANARY_SECONDS,
  parseDuration,
  parseHistoryArgs,
  parseReleaseArgs,
  parsePromoteArgs,
} from '../../ops/release/args';
import { parseBuildArgs } from '../../ops/build/build-command';
import { passwordFromToken, registryOf } from '../../ops/build/image-build';
import { formatDuration, formatHistory, historyRows } from '../../ops/release/history';
import { DEFAULT_PRE_PROMOTE_TIMEOUT_SECONDS, PRE_PROMOTE_COMMAND_MAX_BYTES } from '../../core/pre-promote';
import { readLocalHistory, readLocalRecord, writeLocalRecord } from '../../local/release-store';

/** The record written as its only writer would: on whatever is stored now. */
const putLocalRecord = (dir: string, r: ReleaseRecord) => writeLocalRecord(dir, r, readLocalRecord(dir));

test('defaults: idle pool, all-at-once, default bake, promote', () => {
  expect(parseReleaseArgs(['--release', 'v2']).options).toEqual({
    release: 'v2',
    pool: undefined,
    image: undefined,
    env: {},
    strategy: 'all-at-once',
    canaryPercent: 0,
    canarySeconds: 0,
    bakeSeconds: DEFAULT_BAKE_SECONDS,
    promote: true,
    deployTimeoutSeconds: 300,
    // Fleet mode: half the hosts at a time, the first failure stops the deploy (DECISIONS.md).
    deployRate: { maxConcurrency: '50%', maxErrors: '0' },
    // No verdict without evidence: a bake may go on up to 4 × --bake, with the stage's gate.
    maxBakeSeconds: 4 * DEFAULT_BAKE_SECONDS,
    gate: {},
  });
});

test('the health flags: --health-start-period, --health-timeout, --drain go to the pool (only those given); the deploy timeout grows with them', () => {
  const o = parseReleaseArgs([
    '--release',
    'v2',
    '--health-start-period',
    '2m',
    '--health-timeout',
    '5s',
    '--drain',
    '30s',
  ]).options;
  expect(o.poolOptions).toEqual({ healthStartPeriodSeconds: 120, healthTimeoutSeconds: 5, drainSeconds: 30 });
  // Two recreations, each a drain (30) and the gate's wait (120 + 3 × (5 + 5)), and a minute.
  expect(o.deployTimeoutSeconds).toBe(2 * (30 + 150) + 60);
  expect(parseReleaseArgs(['--release', 'v2', '--health-start-period', '0s']).options).toMatchObject({
    poolOptions: { healthStartPeriodSeconds: 0 },
    deployTimeoutSeconds: 300,
  });
  expect(parseReleaseArgs(['--release', 'v2', '--drain', '1m']).options.poolOptions).toEqual({ drainSeconds: 60 });
  expect(parseReleaseArgs(['--release', 'v2']).options.poolOptions).toBeUndefined();
  // A longer --deploy-timeout is kept as given; without health flags any (the host's defaults apply).
  expect(
    parseReleaseArgs(['--release', 'v2', '--health-start-period', '90s', '--deploy-timeout', '10m']).options
      .deployTimeoutSeconds,
  ).toBe(600);
  expect(parseReleaseArgs(['--release', 'v2', '--deploy-timeout', '30s']).options.deployTimeoutSeconds).toBe(30);
});

test('the gate flags: --max-bake, --min-requests, --max-p99, --max-p99-ratio', () => {
  const o = parseReleaseArgs([
    '--release',
    'v2',
    '--bake',
    '30s',
    '--max-bake',
    '5m',
    '--min-requests',
    '100',
    '--max-p99',
    '750ms',
    '--max-p99-ratio',
    '2.5',
  ]).options;
  expect(o).toMatchObject({
    bakeSeconds: 30,
    maxBakeSeconds: 300,
    gate: { minRequests: 100, maxP99Ms: 750, maxP99Ratio: 2.5 },
  });
  expect(parseReleaseArgs(['--release', 'v2', '--bake', '30s']).options.maxBakeSeconds).toBe(120);
  expect(parseReleaseArgs(['--release', 'v2', '--max-p99', '2s']).options.gate).toEqual({ maxP99Ms: 2000 });
  expect(parseReleaseArgs(['--release', 'v2', '--bake', '2m', '--max-bake', '2m']).options.maxBakeSeconds).toBe(120);
});

test.each<[string[], string]>([
  [['--bake', '2m', '--max-bake', '1m'], '--max-bake (1m) must be at least --bake (120 s)'],
  [['--min-requests', '0'], '--min-requests must be a whole number 1-10000, got "0"'],
  [['--min-requests', '50.5'], '--min-requests must be a whole number 1-10000, got "50.5"'],
  [['--max-p99', '500'], '--max-p99 must be a time like 500ms or 2s (at least 1ms), got "500"'],
  [['--max-p99-ratio', '1'], '--max-p99-ratio must be a number above 1 (up to 1000), like 3 or 1.5, got "1"'],
  [['--max-p99-ratio', 'x'], '--max-p99-ratio must be a number above 1 (up to 1000), like 3 or 1.5, got "x"'],
])('bad gate flags %j: %s', (extra, message) => {
  expect(() => parseReleaseArgs(['--release', 'v2', ...extra])).toThrow(message);
});

test('--image: a registry with a port (private registries have one; ECR has none), a tag, a digest', () => {
  for (const image of [
    'registry.example.com:5000/app:v2',
    '127.0.0.1:5055/bluegreen-dock:v2',
    '123456789012.dkr.ecr.eu-west-1.amazonaws.com/bluegreen-prod:v2',
    `ghcr.io/org/app:v2@sha256:${'a'.repeat(64)}`,
  ])
    expect(parseReleaseArgs(['--release', 'v2', '--image', image]).options.image).toBe(image);
});

test('--build DIR: kept apart from the release options (built and pushed first, then released as --image)', () => {
  const parsed = parseReleaseArgs(['--release', 'v2', '--build', 'examples/python-app', '--stage', 'prod']);
  expect(parsed.build).toBe('examples/python-app');
  expect(parsed.options.image).toBeUndefined();
  expect(parsed.aws.stage).toBe('prod');
  expect(parseReleaseArgs(['--release', 'v2']).build).toBeUndefined();
});

test('build DIR: the id defaults to the UTC build time; positionals and ids are checked', () => {
  const now = new Date('2025-03-01T14:15:09.123Z');
  expect(parseBuildArgs(['examples/python-app', '--stage', 'prod'], now)).toEqual({
    dir: 'examples/python-app',
    release: 'b20250301-141509',
    aws: { stage: 'prod', region: undefined, profile: undefined },
  });
  expect(parseBuildArgs(['app', '--release', 'v9'], now).release).toBe('v9');
  expect(() => parseBuildArgs([], now)).toThrow(/usage: bluegreen build DIR/);
  expect(() => parseBuildArgs(['a', 'b'], now)).toThrow(/usage: bluegreen build DIR/);
  expect(() => parseBuildArgs(['a', '--tag', 'x'], now)).toThrow(ConfigError);
  expect(() => parseBuildArgs(['a', '--release', 'a/b'], now)).toThrow(/--release must be/);
});

test('the ECR login: the password from the token (AWS:<password>), the registry host of the repository', () => {
  expect(passwordFromToken(Buffer.from('AWS:s3cr:et').toString('base64'))).toEqual({
    username: 'AWS',
    password: 's3cr:et',
  });
  expect(() => passwordFromToken(Buffer.from('nocolon').toString('base64'))).toThrow(/not user:password/);
  expect(registryOf('123456789012.dkr.ecr.eu-west-1.amazonaws.com/bluegreen-prod')).toBe(
    '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
  );
  expect(registryOf('127.0.0.1:5055/bluegreen-dock')).toBe('127.0.0.1:5055');
});

test('release promote ID: one id, the AWS flags', () => {
  expect(parsePromoteArgs(['20261206-1200-green-v3', '--stage', 'prod'])).toEqual({
    id: '20261206-1200-green-v3',
    aws: { stage: 'prod', region: undefined, profile: undefined },
  });
  expect(() => parsePromoteArgs([])).toThrow(/usage: bluegreen release promote ID/);
  expect(() => parsePromoteArgs(['a', 'b'])).toThrow(/usage: bluegreen release promote ID/);
});

test('--max-concurrency / --max-errors: a host count or a percentage, as Run Command takes them', () => {
  expect(
    parseReleaseArgs(['--release', 'v2', '--max-concurrency', '1', '--max-errors', '10%']).options.deployRate,
  ).toEqual({ maxConcurrency: '1', maxErrors: '10%' });
  expect(
    parseReleaseArgs(['--release', 'v2', '--max-concurrency', '100%', '--max-errors', '2']).options.deployRate,
  ).toEqual({ maxConcurrency: '100%', maxErrors: '2' });
});

test('every flag', () => {
  const { options, aws } = parseReleaseArgs([
    '--release',
    'v2.1_rc-1',
    '--pool',
    'green',
    '--image',
    '123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v2',
    '--env',
    'FAULT_RATE=0.2',
    '--env',
    'EMPTY=',
    '--env',
    'URL=http://x/?a=b',
    '--strategy',
    'canary',
    '--canary-percent',
    '25',
    '--canary-duration',
    '1m30s',
    '--bake',
    '5m',
    '--no-promote',
    '--stage',
    'prod',
    '--region',
    'eu-west-1',
  ]);
  expect(options).toMatchObject({
    release: 'v2.1_rc-1',
    pool: 'green',
    image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v2',
    env: { FAULT_RATE: '0.2', EMPTY: '', URL: 'http://x/?a=b' },
    strategy: 'canary',
    canaryPercent: 25,
    canarySeconds: 90,
    bakeSeconds: 300,
    promote: false,
  });
  expect(aws).toEqual({ stage: 'prod', region: 'eu-west-1', profile: undefined });
});

test('--canary-percent alone implies the canary strategy with the default duration', () => {
  expect(parseReleaseArgs(['--release', 'v2', '--canary-percent', '5']).options).toMatchObject({
    strategy: 'canary',
    canaryPercent: 5,
    canarySeconds: DEFAULT_CANARY_SECONDS,
  });
  expect(parseReleaseArgs(['--release', 'v2', '--strategy', 'canary']).options).toMatchObject({ canaryPercent: 10 });
});

test.each([
  [[], /--release ID is required/],
  [['--release', ''], /--release must be/],
  [['--release', 'a b'], /--release must be/],
  [['--release', 'x'.repeat(65)], /--release must be/],
  [['--release', 'v/2'], /--release must be/],
  [['--release', 'v2', '--pool', 'purple'], /--pool must be one of blue\|green/],
  [['--release', 'v2', '--env', 'NOEQUALS'], /--env must be KEY=VALUE/],
  [['--release', 'v2', '--env', '1X=2'], /--env must be KEY=VALUE/],
  [['--release', 'v2', '--env', 'A-B=2'], /--env must be KEY=VALUE/],
  [['--release', 'v2', '--env', 'RELEASE_ID=x'], /set by the pool agent/],
  [['--release', 'v2', '--strategy', 'blue-green'], /--strategy must be all-at-once or canary/],
  [['--release', 'v2', '--canary-percent', '0'], /1-99/],
  [['--release', 'v2', '--canary-percent', '100'], /1-99/],
  [['--release', 'v2', '--canary-percent', '7.5'], /1-99/],
  [['--release', 'v2', '--strategy', 'all-at-once', '--canary-percent', '10'], /need --strategy canary/],
  [['--release', 'v2', '--bake', '5x'], /--bake must be a duration/],
  [['--release', 'v2', '--bake', '0s'], /between 1s and 24h/],
  [['--release', 'v2', '--bake', '25h'], /between 1s and 24h/],
  [['--release', 'v2', '--image', 'Has Spaces'], /--image must be/],
  // What SSM's pattern for the image parameter refuses is refused here, before anything is written.
  [['--release', 'v2', '--image', 'app:5000/x:v2:v3'], /--image must be/],
  [['--release', 'v2', '--image', 'registry.example.com:123456/app:v2'], /--image must be/],
  [['--release', 'v2', '--build', 'app', '--image', 'app:v2'], /--build and --image exclude each other/],
  [['--release', 'v2', '--build', ''], /--build needs a directory/],
  [['--release', 'v2', '--image', 'ghcr.io/Org/App:v2'], /--image must be/],
  [
    ['--release', 'v2', '--env', "GREETING=it's"],
    /--env GREETING: values must not hold a single quote, a line break or a NUL character/,
  ],
  [
    ['--release', 'v2', '--env', 'A=line\nbreak'],
    /--env A: values must not hold a single quote, a line break or a NUL character/,
  ],
  // Compose reads \' inside '...' as a quote: the host's env file would run on into the next line.
  [['--release', 'v2', '--env', 'A=x\\'], /--env A: values must not end in a backslash/],
  [['--release', 'v2', '--env', 'SECRET_ON_HOST\n=x'], /--env must be KEY=VALUE/],
  [['--release', 'v2', '--frobnicate'], /Unknown option/],
  [['--release', 'v2', '--max-concurrency', '0'], /--max-concurrency must be a number of hosts/],
  [['--release', 'v2', '--max-concurrency', '150%'], /--max-concurrency must be/],
  [['--release', 'v2', '--max-concurrency', 'half'], /--max-concurrency must be/],
  [['--release', 'v2', '--max-errors', '1.5'], /--max-errors must be a number of hosts/],
  [['--release', 'v2', '--max-errors', '101%'], /--max-errors must be/],
  [['--release', 'v2', 'extra'], /positional/],
  // The parameter's pattern holds a sticky key after the share: that is not a share.
  [['--release', 'v2', '--canary-percent', '10 cookie:session'], /1-99/],
  [['--release', 'v2', '--sticky', 'cookie:session'], /--sticky needs --strategy canary/],
  [['--release', 'v2', '--strategy', 'all-at-once', '--sticky', 'cookie:s'], /--sticky needs --strategy canary/],
  [['--release', 'v2', '--strategy', 'canary', '--sticky', 'session'], /--sticky must be cookie:NAME/],
  [['--release', 'v2', '--strategy', 'canary', '--sticky', 'cookie:a-b'], /--sticky must be cookie:NAME/],
  [['--release', 'v2', '--strategy', 'canary', '--sticky', 'header:x_y'], /--sticky must be cookie:NAME/],
  [['--release', 'v2', '--strategy', 'canary', '--sticky', 'query:a'], /--sticky must be cookie:NAME/],
  [['--release', 'v2', '--strategy', 'canary', '--sticky', 'cookie:a b'], /--sticky must be cookie:NAME/],
  [['--release', 'v2', '--strategy', 'canary', '--sticky', ''], /--sticky must be cookie:NAME/],
  // The health flags: durations within their bounds; a deploy timeout that cannot hold the gate they allow.
  [['--release', 'v2', '--health-start-period', 'soon'], /^--health-start-period must be a duration like 30s/],
  [
    ['--release', 'v2', '--health-start-period', '31m'],
    /^--health-start-period must be between 0s and 1800s, got "31m"$/,
  ],
  [['--release', 'v2', '--health-timeout', '0s'], /^--health-timeout must be between 1s and 300s, got "0s"$/],
  [['--release', 'v2', '--health-timeout', '6m'], /^--health-timeout must be between 1s and 300s, got "6m"$/],
  [['--release', 'v2', '--drain', '61m'], /^--drain must be between 0s and 3600s, got "61m"$/],
  [['--release', 'v2', '--drain', '5x'], /^--drain must be a duration like 30s/],
  [
    ['--release', 'v2', '--health-start-period', '120s', '--deploy-timeout', '2m'],
    /^--deploy-timeout 2m is shorter than a deploy can take with these health settings \(368 s: two recreations, each a drain plus the gate's wait\); give at least 368s or leave it out$/,
  ],
])('bad input %j → ConfigError', (args, message) => {
  expect(() => parseReleaseArgs(args as string[])).toThrow(ConfigError);
  expect(() => parseReleaseArgs(args as string[])).toThrow(message);
});

test('--sticky: a cookie or header key for a canary, a header name lowercased; absent otherwise', () => {
  expect(
    parseReleaseArgs(['--release', 'v2', '--canary-percent', '10', '--sticky', 'cookie:Session_1']).options,
  ).toMatchObject({
    strategy: 'canary',
    canaryPercent: 10,
    sticky: 'cookie:Session_1',
  });
  expect(
    parseReleaseArgs(['--release', 'v2', '--strategy', 'canary', '--sticky', 'header:X-User-Id']).options.sticky,
  ).toBe('header:x-user-id');
  expect(parseReleaseArgs(['--release', 'v2', '--strategy', 'canary']).options).not.toHaveProperty('sticky');
});

test('durations', () => {
  expect(parseDuration('30s', '--bake')).toBe(30);
  expect(parseDuration('90', '--bake')).toBe(90);
  expect(parseDuration('2m', '--bake')).toBe(120);
  expect(parseDuration('1h', '--bake')).toBe(3600);
  expect(parseDuration('1m30s', '--bake')).toBe(90);
  expect(() => parseDuration('', '--bake')).toThrow(/--bake/);
  expect(() => parseDuration('m', '--bake')).toThrow(/--bake/);
  expect(parseHistoryArgs(['--limit', '5'])).toEqual({
    limit: 5,
    aws: { stage: undefined, region: undefined, profile: undefined },
  });
  expect(() => parseHistoryArgs(['--limit', '0'])).toThrow(/--limit/);
});

test('--pre-promote, --pre-promote-timeout, --irreversible', () => {
  const { options } = parseReleaseArgs([
    '--release',
    'v2',
    '--pre-promote',
    'npm run migrate -- --to \'v2\'; echo "$RELEASE_ID"',
    '--pre-promote-timeout',
    '90s',
    '--irreversible',
  ]);
  expect(options.prePromote).toEqual({
    command: 'npm run migrate -- --to \'v2\'; echo "$RELEASE_ID"',
    timeoutSeconds: 90,
  });
  expect(options.irreversible).toBe(true);
  expect(parseReleaseArgs(['--release', 'v2', '--pre-promote', 'true']).options.prePromote).toEqual({
    command: 'true',
    timeoutSeconds: DEFAULT_PRE_PROMOTE_TIMEOUT_SECONDS,
  });
  const plain = parseReleaseArgs(['--release', 'v2']).options;
  expect(plain.prePromote).toBeUndefined();
  expect(plain.irreversible).toBeUndefined();
});

test.each<[string[], RegExp]>([
  [['--pre-promote', ''], /--pre-promote is empty/],
  [['--pre-promote', '   '], /--pre-promote is empty/],
  [['--pre-promote', 'x'.repeat(PRE_PROMOTE_COMMAND_MAX_BYTES + 1)], /--pre-promote is 2049 bytes; at most 2048/],
  [['--pre-promote', 'a\0b'], /--pre-promote contains a NUL/],
  [['--pre-promote-timeout', '5m'], /--pre-promote-timeout needs --pre-promote CMD/],
  [['--pre-promote', 'true', '--pre-promote-timeout', 'soon'], /--pre-promote-timeout must be a duration/],
  [['--pre-promote', 'true', '--pre-promote-timeout', '2h'], /--pre-promote-timeout must be between 1s and 3600s/],
  [['--pre-promote', 'true', '--pre-promote-timeout', '0s'], /--pre-promote-timeout must be between/],
  [['--irreversible=yes'], /irreversible/],
])('bad release-phase input #%#', (extra, message) => {
  expect(() => parseReleaseArgs(['--release', 'v2', ...extra])).toThrow(ConfigError);
  expect(() => parseReleaseArgs(['--release', 'v2', ...extra])).toThrow(message);
});

describe('the CLI', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-release-args-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  // The CLI as a process (bin/bluegreen.cjs), as an operator runs it.
  const cli = (...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, BLUEGREEN_STATE_DIR: dir };
      delete env.BLUEGREEN_STAGE;
      execFile(
        process.execPath,
        [path.join(REPO_ROOT, 'bin', 'bluegreen.cjs'), ...args],
        { env, cwd: REPO_ROOT },
        (error, stdout, stderr) =>
          resolve({
            code: error ? Number((error as { code?: number }).code ?? 1) : 0,
            out: stdout.trimEnd(),
            err: stderr.trimEnd(),
          }),
      );
    });

  test('bad release-phase values are exit 2 with one line naming the flag', async () => {
    const empty = await cli('release', '--release', 'v2', '--pre-promote', '');
    expect(empty.code).toBe(2);
    expect(empty.err).toBe('bluegreen release: --pre-promote is empty');
    const timeout = await cli('release', '--release', 'v2', '--pre-promote', 'true', '--pre-promote-timeout', '9h');
    expect(timeout.code).toBe(2);
    expect(timeout.err.split('\n')).toHaveLength(1);
    expect(timeout.err).toMatch(/--pre-promote-timeout/);
    expect((await cli('release', '--release', 'v2', '--pre-promote-timeout', '1m')).code).toBe(2);
    expect(readLocalHistory(dir)).toEqual([]);
  });

  test('bad input is exit 2 with one line; --help prints the usage', async () => {
    const bad = await cli('release', '--release', 'a b');
    expect(bad.code).toBe(2);
    expect(bad.err.split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/^bluegreen release: --release must be/);
    expect((await cli('release', '--release', 'v2', '--bake', 'soon')).code).toBe(2);
    const slow = await cli('release', '--release', 'v2', '--health-start-period', '2h');
    expect(slow).toMatchObject({
      code: 2,
      err: 'bluegreen release: --health-start-period must be between 0s and 1800s, got "2h"',
    });
    const help = await cli('release', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('usage: bluegreen release --release ID');
    expect(help.out).toContain('--canary-percent');
    expect(help.out).toContain('--health-start-period D');
    expect((await cli('history', '--help')).out).toContain('newest first');
    expect((await cli('--help')).out).toMatch(/release .*\n.*history/);
  });

  test('without a running local stack: exit 2, one line, nothing written', async () => {
    const r = await cli('release', '--release', 'v2');
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/no local stack is running/);
    expect(readLocalHistory(dir)).toEqual([]);
  });

  test('--stage goes to the AWS backend, which checks the stage name first', async () => {
    const r = await cli('release', '--release', 'v2', '--stage', 'Not_A_Stage');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--stage must be a stage name like prod, got "Not_A_Stage"/);
  });

  test('history: one row per release (its last version), newest first, with outcome, duration and reason', async () => {
    expect((await cli('history')).out).toBe('no releases yet');
    const rec = (id: string, startedAt: string, patch: Partial<ReleaseRecord>): ReleaseRecord => ({
      id,
      pool: 'green',
      release: id,
      env: {},
      previousPool: 'blue',
      previousRelease: 'b1',
      replacedRelease: 'g1',
      strategy: 'all-at-once',
      canaryPercent: 0,
      bakeSeconds: 60,
      state: 'deploying',
      startedAt,
      updatedAt: startedAt,
      steps: [],
      ...patch,
    });
    putLocalRecord(dir, rec('r1', '2026-11-23T10:00:00.000Z', {}));
    putLocalRecord(
      dir,
      rec('r1', '2026-11-23T10:00:00.000Z', { state: 'promoted', finishedAt: '2026-11-23T10:01:05.000Z' }),
    );
    putLocalRecord(
      dir,
      rec('r2', '2026-11-23T11:00:00.000Z', {
        strategy: 'canary',
        canaryPercent: 10,
        state: 'rolled-back',
        reason: 'gate crossed',
        finishedAt: '2026-11-23T11:00:42.000Z',
      }),
    );
    const out = (await cli('history')).out.split('\n');
    expect(out[0]).toMatch(/^ID\s+POOL\s+RELEASE\s+STRATEGY\s+OUTCOME\s+DURATION\s+REASON$/);
    expect(out[1]).toMatch(/^r2\s+green\s+r2\s+canary 10%\s+rolled-back\s+42s\s+gate crossed$/);
    expect(out[2]).toMatch(/^r1\s+green\s+r1\s+all-at-once\s+promoted\s+1m05s$/);
    expect(out).toHaveLength(3);
    const rows = historyRows(
      [rec('r3', '2026-11-23T12:00:00.000Z', { state: 'baking', bakeUntil: '2026-11-23T12:01:00.000Z' })],
      Date.parse('2026-11-23T12:00:30.000Z'),
    );
    expect(rows[0]).toMatchObject({ outcome: 'baking (in progress)', duration: '30s+' });
    expect(
      historyRows([rec('r4', '2026-11-23T12:00:00.000Z', {})], Date.parse('2026-11-24T12:00:00.000Z'))[0].outcome,
    ).toBe('deploying (abandoned)');
    expect(formatDuration(3_700_000)).toBe('1h01m');
    expect(formatHistory([])).toBe('no releases yet');
  });
});
