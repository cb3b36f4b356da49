// Issue 10, item 3: a fleet host launched during a release (scale-out, replacement, rolling update)
// never enters service half-released.
//  - Run Command's command (core/host-command.ts), run by a real shell: on a host still
//    bootstrapping it answers the join step and succeeds instead of failing the release or flip.
//  - fleet/bluegreen-join.sh, for real, with the aws CLI reading the release record (the head of
//    the stage's ledger, a DynamoDB table) from moto_server: it holds the host out while a release is
//    in progress (heartbeating its launch lifecycle action) and lets it join once the release is
//    over, stale, or absent (no head item); a ledger it cannot read (no table) is retried, never
//    "no release". moto 5.2 has no
//    lifecycle-action API, so an `aws` shim records the `autoscaling` calls (and passes every other
//    call to the real CLI).
//  - The script's rule (fleet/record-verdict.jq, generated from core/) is the release CLI's rule:
//    `--verdict` against parseRecord + recordVerdict/inProgress on the same records.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { ledgerTableName } from '../../core/release-ledger';
import { APPLY_PATH, BOOT_FINISHED, BOOTSTRAPPING_MARKER, JOINING_DETAIL, JOINING_STEP } from '../../core/host-command';
import { hostCommandUnder } from '../helpers/host-command';
import {
  BAKE_AHEAD_MS,
  FINAL_STATES,
  inProgress,
  parseRecord,
  recordVerdict,
  ReleaseRecord,
  serializeRecord,
  STALE_AFTER_MS,
} from '../../core/release-record';
import { parseStepLines } from '../../core/step-line';
import { createLedgerTable, Moto, startMoto } from '../helpers/moto';
import { ledgerHostEnv, putLedgerHead } from '../helpers/ledger';
import { waitFor } from '../helpers/stack';

const JOIN = path.join(REPO_ROOT, 'fleet', 'bluegreen-join.sh');
const STAGE = 'join';
const LEDGER_TABLE = ledgerTableName(STAGE);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-join-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<Run> & { output: () => string } {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  if (stdin !== undefined) {
    // A script that has exited before reading its input must not fail the test with EPIPE.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(stdin);
  }
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
  return Object.assign(done, { output: () => stdout + stderr });
}

describe("Run Command's command on a host (the pool-switch rule's and the release CLI's)", () => {
  /** The real command string, its host paths moved under this test's directory. */
  const commandHere = (args: string[] = []) => hostCommandUnder(dir, args);
  const at = (hostPath: string) => path.join(dir, hostPath);
  /** Writes a host file under this test's directory (its parent made first). */
  const put = (hostPath: string, content = '') => {
    mkdirSync(path.dirname(at(hostPath)), { recursive: true });
    writeFileSync(at(hostPath), content);
  };
  const installApply = () => {
    // Stands in for bluegreen-apply: echoes its arguments as a step line and exits 3.
    put(APPLY_PATH, '#!/bin/sh\necho "step=active pool=green ok=true detail=args $*"\nexit 3\n');
    chmodSync(at(APPLY_PATH), 0o755);
  };
  const sh = (command: string) => run('sh', ['-c', command], {});

  test('before bootstrap.sh installed bluegreen-apply: the join step, exit 0 (the old command failed here: "not found", exit 127)', async () => {
    const result = await sh(commandHere(['--retry']));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(parseStepLines(result.stdout, 'i-new')).toEqual([
      { host: 'i-new', step: JOINING_STEP, pool: '-', ok: true, detail: JOINING_DETAIL },
    ]);
    // What Run Command ran before this change, on the same host:
    const old = await sh(`${at(APPLY_PATH)} --retry`);
    expect(old.code).toBe(127);
  });

  test('a host past its first boot without bluegreen-apply fails (exit 127): it is in service and must not pass as joining', async () => {
    put(BOOT_FINISHED);
    const result = await sh(commandHere(['--retry']));
    expect(result.code).toBe(127);
    expect(result.stdout).not.toContain(`step=${JOINING_STEP}`);
  });

  test('while bootstrap.sh runs (its marker is there): the join step, bluegreen-apply is not run', async () => {
    installApply();
    put(BOOTSTRAPPING_MARKER);
    const result = await sh(commandHere(['--retry']));
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(`step=${JOINING_STEP} pool=- ok=true detail=${JOINING_DETAIL}`);
  });

  test("a bootstrapped host runs bluegreen-apply with the arguments, and its exit code is the command's", async () => {
    installApply();
    const result = await sh(commandHere(['--retry']));
    expect(result.code).toBe(3);
    expect(result.stdout.trim()).toBe('step=active pool=green ok=true detail=args --retry');
  });
});

describe("bluegreen-join --verdict: the release CLI's rule (inProgress), in jq", () => {
  const now = Date.parse('2026-11-23T19:10:00.000Z');
  const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
  const base = {
    id: 'r1',
    pool: 'green',
    release: 'v2',
    env: {},
    previousPool: 'blue',
    previousRelease: 'v1',
    replacedRelease: 'v0',
    replacedEnv: {},
    strategy: 'all-at-once',
    canaryPercent: 0,
    bakeSeconds: 300,
    startedAt: at(60),
    steps: [] as ReleaseRecord['steps'],
  } as const;
  const dated = (cases: Array<[string, Partial<ReleaseRecord>]>): Array<[string, string]> =>
    cases.map(([name, fields]) => [name, JSON.stringify({ ...base, ...fields })]);
  const records: Array<[string, string]> = [
    [
      'deploying, written just now',
      serializeRecord({ ...base, state: 'deploying', updatedAt: at(0) } as ReleaseRecord),
    ],
    ['verifying, 9 min ago', serializeRecord({ ...base, state: 'verifying', updatedAt: at(9) } as ReleaseRecord)],
    [
      'deploying, 11 min ago (abandoned)',
      serializeRecord({ ...base, state: 'deploying', updatedAt: at(11) } as ReleaseRecord),
    ],
    [
      'baking, written 40 min ago, bake ends in 5 min',
      serializeRecord({ ...base, state: 'baking', updatedAt: at(40), bakeUntil: at(-5) } as ReleaseRecord),
    ],
    [
      'baking, bake ended 9 min ago',
      serializeRecord({ ...base, state: 'baking', updatedAt: at(40), bakeUntil: at(9) } as ReleaseRecord),
    ],
    [
      'baking, bake ended 11 min ago',
      serializeRecord({ ...base, state: 'baking', updatedAt: at(40), bakeUntil: at(11) } as ReleaseRecord),
    ],
    ...FINAL_STATES.map((state): [string, string] => [
      `${state}, just now`,
      serializeRecord({ ...base, state, updatedAt: at(0) } as ReleaseRecord),
    ]),
    [
      'deploying, updatedAt unreadable',
      serializeRecord({ ...base, state: 'deploying', updatedAt: 'yesterday' } as ReleaseRecord),
    ],
    ['an empty record (before the first release)', '{}'],
    [
      'no pool (not a record for parseRecord)',
      JSON.stringify({
        ...JSON.parse(serializeRecord({ ...base, state: 'deploying', updatedAt: at(0) } as ReleaseRecord)),
        pool: 'purple',
      }),
    ],
    [
      'steps not a list',
      JSON.stringify({
        ...JSON.parse(serializeRecord({ ...base, state: 'deploying', updatedAt: at(0) } as ReleaseRecord)),
        steps: {},
      }),
    ],
    ['junk', 'not json'],
    // Dates: one form (what the CLI writes), read the same way, and bounded. Before, jq read a
    // +00:00 date as unreadable (stale) and Date.parse as a time (in progress), and a far-future
    // bakeUntil held every release and every joining host until then.
    ...dated([
      [
        'baking, bakeUntil in 2999 (held every release and every joining host until then)',
        { state: 'baking', updatedAt: at(1), bakeUntil: '2999-01-01T00:00:00.000Z' },
      ],
      [
        'deploying, updatedAt with +00:00 (stale to jq, in progress to Date.parse)',
        { state: 'deploying', updatedAt: at(1).replace('.000Z', '+00:00') },
      ],
      [
        'baking, bakeUntil with +00:00 in 5 min',
        { state: 'baking', updatedAt: at(40), bakeUntil: at(-5).replace('.000Z', '+00:00') },
      ],
      ['deploying, updatedAt 2 h ahead of the clock', { state: 'deploying', updatedAt: at(-120) }],
      ['deploying, updatedAt 9 min ahead of the clock (skew)', { state: 'deploying', updatedAt: at(-9) }],
      [
        'baking, bakeUntil the longest bake and a promotion after updatedAt',
        { state: 'baking', updatedAt: at(1), bakeUntil: new Date(now - 60_000 + BAKE_AHEAD_MS).toISOString() },
      ],
      [
        'baking, bakeUntil one second further',
        { state: 'baking', updatedAt: at(1), bakeUntil: new Date(now - 60_000 + BAKE_AHEAD_MS + 1000).toISOString() },
      ],
      ['deploying, startedAt after updatedAt', { state: 'deploying', startedAt: at(0), updatedAt: at(1) }],
      ['deploying, updatedAt without milliseconds', { state: 'deploying', updatedAt: at(1).replace('.000Z', 'Z') }],
      ['deploying, updatedAt with a trailing line feed', { state: 'deploying', updatedAt: `${at(1)}\n` }],
      [
        'deploying, updatedAt with one digit of milliseconds',
        { state: 'deploying', updatedAt: at(1).replace('.000Z', '.5Z') },
      ],
      [
        'deploying, updatedAt on 30 February',
        { state: 'deploying', updatedAt: '2026-02-30T19:09:00.000Z', startedAt: '2026-02-01T00:00:00.000Z' },
      ],
      ['deploying, updatedAt at 24:00', { state: 'deploying', updatedAt: '2026-11-23T24:00:00.000Z' }],
      [
        'deploying, startedAt a number',
        { state: 'deploying', startedAt: 1795979400000 as unknown as string, updatedAt: at(1) },
      ],
      [
        'baking, bakeUntil null (no bake yet)',
        { state: 'baking', updatedAt: at(1), bakeUntil: null as unknown as string },
      ],
      [
        'promoted, bakeUntil in 2999 (a final record stays final)',
        { state: 'promoted', updatedAt: at(1), bakeUntil: '2999-01-01T00:00:00.000Z' },
      ],
    ]),
  ];

  /** The verdict by the CLI's own functions, in the script's words. */
  const cliVerdict = (value: string): string => {
    const parsed = parseRecord(value);
    if (!parsed) return 'none';
    const v = recordVerdict(parsed, now);
    if (v.kind === 'invalid') return `invalid ${v.reason}`;
    return v.kind === 'in-progress' ? `in-progress ${parsed.id} ${parsed.state}` : v.kind;
  };

  test.each(records)('%s', async (_name, value) => {
    const result = await run(
      'sh',
      [JOIN, '--verdict', String(now / 1000)],
      { BLUEGREEN_ENV_FILE: '/nonexistent/env' },
      value,
    );
    expect(result.code).toBe(0);
    const verdict = result.stdout.trim();
    expect(verdict).toBe(cliVerdict(value));
    expect(verdict.startsWith('in-progress')).toBe(inProgress(parseRecord(value), now));
  });

  test('a jq that cannot do the rule (missing, or without test/fromdateiso8601/todateiso8601): exit 2, never "no release"', async () => {
    const bin = path.join(dir, 'bin');
    execFileSync('mkdir', ['-p', bin]);
    writeFileSync(path.join(bin, 'jq'), '#!/bin/sh\necho "jq: error: sub/2 is not defined" >&2\nexit 3\n');
    chmodSync(path.join(bin, 'jq'), 0o755);
    const result = await run(
      'sh',
      [JOIN, '--verdict', String(now / 1000)],
      { BLUEGREEN_ENV_FILE: '/nonexistent/env', PATH: `${bin}:${process.env.PATH}` },
      records[0][1],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('jq is missing or lacks test/fromdateiso8601/todateiso8601');
    expect(result.stdout).toBe('');
  });

  test('the rule is not beside the script (or does not run): exit 2, never "no release"', async () => {
    const copy = path.join(dir, 'fleet');
    mkdirSync(copy);
    writeFileSync(path.join(copy, 'bluegreen-join.sh'), readFileSync(JOIN));
    const missing = await run(
      'sh',
      [path.join(copy, 'bluegreen-join.sh'), '--verdict', String(now / 1000)],
      { BLUEGREEN_ENV_FILE: '/nonexistent/env' },
      records[0][1],
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      `${path.join(copy, 'record-verdict.jq')} is missing (generated from core/ by npm run generate, shipped next to this script)`,
    );
    expect(missing.stdout).toBe('');
    writeFileSync(
      path.join(copy, 'record-verdict.jq'),
      readFileSync(path.join(REPO_ROOT, 'fleet', 'record-verdict.jq'), 'utf8').split('def problem')[0],
    );
    const broken = await run(
      'sh',
      [path.join(copy, 'bluegreen-join.sh'), '--verdict', String(now / 1000)],
      { BLUEGREEN_ENV_FILE: '/nonexistent/env' },
      records[0][1],
    );
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('record-verdict.jq does not run (jq: ');
    expect(broken.stdout).toBe('');
  });
});

describe('bluegreen-join against moto: the host waits out a release before it joins', () => {
  let moto: Moto;
  beforeAll(async () => {
    moto = await startMoto();
    await createLedgerTable(moto, STAGE);
  });
  afterAll(async () => {
    await moto?.stop();
  });
  /** The stage's release record: the ledger's head, as the CLI and the guard leave it. */
  const putRecord = (value: string | undefined) => putLedgerHead(moto, STAGE, value);

  /** An `aws` first on PATH: records autoscaling calls (moto has no lifecycle actions), the rest goes to the real CLI. */
  function awsShim(): { env: Record<string, string>; calls: () => string[] } {
    const real = execFileSync('sh', ['-c', 'command -v aws'], { encoding: 'utf8' }).trim();
    const bin = path.join(dir, 'bin');
    const log = path.join(dir, 'autoscaling-calls');
    writeFileSync(log, '');
    execFileSync('mkdir', ['-p', bin]);
    writeFileSync(
      path.join(bin, 'aws'),
      `#!/bin/sh\nif [ "$1" = autoscaling ]; then echo "$*" >> '${log}'; exit 0; fi\nexec '${real}' "$@"\n`,
    );
    chmodSync(path.join(bin, 'aws'), 0o755);
    return {
      env: { PATH: `${bin}:${process.env.PATH}` },
      calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
    };
  }

  const record = (state: ReleaseRecord['state'], updatedAt: string) =>
    serializeRecord({
      id: '20261123-191000-green-v2',
      pool: 'green',
      release: 'v2',
      env: {},
      previousPool: 'blue',
      previousRelease: 'v1',
      replacedRelease: 'v0',
      replacedEnv: {},
      strategy: 'all-at-once',
      canaryPercent: 0,
      bakeSeconds: 60,
      state,
      startedAt: updatedAt,
      updatedAt,
      steps: [],
    });

  const join = (shim: ReturnType<typeof awsShim>, extra: Record<string, string> = {}) =>
    run('sh', [JOIN, 'bluegreen-join-hosts', 'bluegreen-bootstrap', 'i-0new'], {
      ...moto.env,
      ...shim.env,
      BLUEGREEN_ENV_FILE: '/nonexistent/env',
      ...ledgerHostEnv(STAGE),
      JOIN_POLL_SECONDS: '1',
      JOIN_HEARTBEAT_SECONDS: '1',
      ...extra,
    });

  test('no record yet (a stage that never released: the ledger has no head item): joins at once', async () => {
    await putRecord(undefined);
    const result = await join(awsShim());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('bluegreen-join: no release in progress (none): joining');
  });

  test('a release in progress: the host waits, heartbeating its own launch, and joins once the release is promoted', async () => {
    await putRecord(record('baking', new Date().toISOString()));
    const shim = awsShim();
    const joining = join(shim);
    let exited = false;
    void joining.then(() => (exited = true));
    await waitFor(
      () => joining.output().includes('is in progress (baking): waiting for it to finish before joining'),
      'the host to wait',
      30_000,
    );
    await waitFor(() => shim.calls().length >= 2, 'two lifecycle heartbeats', 30_000);
    expect(exited).toBe(false);
    expect(shim.calls()[0]).toBe(
      'autoscaling record-lifecycle-action-heartbeat --auto-scaling-group-name bluegreen-join-hosts --lifecycle-hook-name bluegreen-bootstrap --instance-id i-0new',
    );

    await putRecord(record('promoted', new Date().toISOString()));
    const result = await joining;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /release 20261123-191000-green-v2 is over \(final\) after \d+ s: joining with the stage state as it is now/,
    );
    // said once, not once per poll
    expect(result.stdout.split('waiting for it to finish').length).toBe(2);
  });

  test("a warning on the aws CLI's stderr is not read as part of the record (the host still waits)", async () => {
    await putRecord(record('baking', new Date().toISOString()));
    const shim = awsShim();
    const noisy = path.join(dir, 'noisy');
    execFileSync('mkdir', ['-p', noisy]);
    writeFileSync(
      path.join(noisy, 'aws'),
      `#!/bin/sh\necho "WARNING: a deprecation notice" >&2\nexec '${path.join(dir, 'bin', 'aws')}' "$@"\n`,
    );
    chmodSync(path.join(noisy, 'aws'), 0o755);
    const result = await join(shim, { PATH: `${noisy}:${shim.env.PATH}`, JOIN_MAX_WAIT_SECONDS: '1' });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('is in progress (baking): waiting');
  });

  test('an abandoned record (not written for longer than the CLI allows) does not hold the fleet back', async () => {
    await putRecord(record('deploying', new Date(Date.now() - STALE_AFTER_MS - 60_000).toISOString()));
    const result = await join(awsShim());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('no release in progress (stale): joining');
  });

  test('a release still in progress after JOIN_MAX_WAIT_SECONDS: exit 1 (the user data abandons the launch); the first heartbeat went out at once', async () => {
    await putRecord(record('verifying', new Date().toISOString()));
    const shim = awsShim();
    const result = await join(shim, { JOIN_MAX_WAIT_SECONDS: '2', JOIN_HEARTBEAT_SECONDS: '300' });
    // The bootstrap already used part of the hook's timeout: waiting starts with a heartbeat, not 5 minutes later.
    expect(shim.calls()).toHaveLength(1);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /still not joining after \d+ s \(limit 2 s\): in-progress 20261123-191000-green-v2 verifying/,
    );
  });

  test('the ledger unreachable: the host does not join blind; it retries and gives up at the limit', async () => {
    const result = await join(awsShim(), {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      JOIN_MAX_WAIT_SECONDS: '1',
      AWS_MAX_ATTEMPTS: '1',
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `bluegreen-join: cannot read the head of the release ledger ${LEDGER_TABLE} (unknown `,
    );
    expect(result.stdout).not.toContain('joining');
  });

  test('the ledger table missing (ResourceNotFoundException) is not "no release": the host retries until it can read the head, then waits for the release there', async () => {
    const stage = `${STAGE}-late`;
    const shim = awsShim();
    const joining = run('sh', [JOIN, 'bluegreen-join-hosts', 'bluegreen-bootstrap', 'i-0new'], {
      ...moto.env,
      ...shim.env,
      BLUEGREEN_ENV_FILE: '/nonexistent/env',
      ...ledgerHostEnv(stage),
      JOIN_POLL_SECONDS: '1',
      JOIN_HEARTBEAT_SECONDS: '1',
    });
    let exited = false;
    void joining.then(() => (exited = true));
    const cannotRead = `bluegreen-join: cannot read the head of the release ledger ${ledgerTableName(stage)} (unknown `;
    await waitFor(() => joining.output().split(cannotRead).length > 2, 'two failed reads of the head', 30_000);
    expect(joining.output()).toContain('ResourceNotFoundException');
    // Held out meanwhile: its launch kept open by heartbeats, never joined.
    await waitFor(() => shim.calls().length >= 1, 'a lifecycle heartbeat', 30_000);
    expect(exited).toBe(false);
    expect(joining.output()).not.toContain('joining');

    // The table appears, its head a release in progress: the host now waits for that release...
    await createLedgerTable(moto, stage);
    await putLedgerHead(moto, stage, record('deploying', new Date().toISOString()));
    await waitFor(
      () => joining.output().includes('is in progress (deploying): waiting for it to finish before joining'),
      'the host to wait for the release',
      30_000,
    );
    expect(exited).toBe(false);
    // ...and joins once it failed.
    await putLedgerHead(moto, stage, record('failed', new Date().toISOString()));
    const result = await joining;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/release 20261123-191000-green-v2 is over \(final\) after \d+ s: joining/);
  });

  test('a head item holding an empty record is no record, as the CLI reads it (parseRecord): joins', async () => {
    await putRecord('');
    const result = await join(awsShim());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('bluegreen-join: no release in progress (none): joining');
  });

  test('without LEDGER_TABLE or LEDGER_HEAD_KEY: exit 2 (configuration), never "no release"', async () => {
    for (const unset of ['LEDGER_TABLE', 'LEDGER_HEAD_KEY']) {
      const result = await join(awsShim(), { [unset]: '' });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`bluegreen-join: ${unset} is not set: cannot read the release record`);
      expect(result.stdout).toBe('');
    }
  });
});
