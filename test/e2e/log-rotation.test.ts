// The host's log rotation with the real logrotate and a real nginx (the repo's nginx.conf, a local
// stack): userdata/logrotate.conf with the test's paths, included by AL2023's global logrotate.conf
// (`create`, `dateext`) as on the host, its postrotate bluegreen-log-reopen.sh, and
// in place of bluegreen-nginx (which reaches nginx in its container) a wrapper with the same
// interface that runs this nginx binary with the stack's prefix and config. The same rotation runs
// against nginx in its container on a Docker Engine in test/docker/compose-set.test.ts.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { httpRequest } from '../../support/http';
import { LocalStack } from '../../local/stack';
import { installCommands, loggedTags, runLogrotate, startTaggedTraffic, testLogrotateConf } from '../helpers/logrotate';
import { startTestStack, waitFor } from '../helpers/stack';

let stack: LocalStack;
let work: string;
let logDir: string;
let nginxCommand: string;

/** A stand-in for bluegreen-nginx: `<script> -s reopen` → `<body> -s reopen`. */
function writeCommand(name: string, body: string): string {
  const file = path.join(work, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

beforeAll(async () => {
  stack = await startTestStack();
  work = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-logrotate-'));
  logDir = path.dirname(stack.state.accessLog);
  const { nginxBin, prefix, confDir } = stack.state;
  nginxCommand = writeCommand(
    'bluegreen-nginx',
    `exec ${nginxBin} -p ${prefix} -c ${path.join(confDir, 'nginx.conf')} "$@"`,
  );
});
afterAll(async () => {
  await stack?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});
// Each test starts with a non-empty access.log (logrotate skips empty ones: notifempty)...
beforeEach(async () => {
  await httpRequest(`${stack.url}/version`, { agent: false });
  await waitFor(() => existsSync(accessLog()) && statSync(accessLog()).size > 0, 'a line in access.log');
});
// ...an unrotated log dir (whatever a rotation named its files) and its own logrotate state.
afterEach(() => {
  for (const f of readdirSync(logDir))
    if (/\.log[.-]|^log-rotation-failures$/.test(f)) rmSync(path.join(logDir, f), { force: true });
  rmSync(path.join(work, 'logrotate.state'), { force: true });
});

const accessLog = () => path.join(logDir, 'access.log');

/** What the RUNBOOK says to do after a failed rotation: reopen by hand; nginx creates access.log again. */
async function reopenByHand(): Promise<void> {
  execFileSync(nginxCommand, ['-s', 'reopen'], { stdio: 'pipe' });
  await waitFor(() => existsSync(accessLog()), 'access.log after a reopen by hand');
}

const rotate = (nginx: string, env: Record<string, string> = {}) =>
  runLogrotate(
    testLogrotateConf(logDir, { ...installCommands(path.join(work, 'bin')), '/usr/local/bin/bluegreen-nginx': nginx }),
    work,
    {
      BLUEGREEN_NGINX: nginx,
      BLUEGREEN_REOPEN_PAUSE: '0.2',
      ...env,
    },
  );

test('a rotation under traffic loses no access-log line: before it in access.log.1, after it in access.log', async () => {
  // GIVEN tagged traffic on nginx
  const traffic = startTaggedTraffic(stack.url, 'ok');
  await traffic.after(200);

  // WHEN logrotate rotates the log dir while requests keep coming
  const run = await rotate(nginxCommand);
  await traffic.after(200);
  await traffic.stop();

  // THEN it succeeded, nginx writes to a new access.log, and every answered request is one line
  expect(run).toMatchObject({ code: 0, stderr: '' });
  expect(traffic.errors).toEqual([]);
  const sent = [...traffic.answered].sort();
  const logged = await waitFor(() => {
    const l = loggedTags(logDir, 'ok');
    return l.current.length + l.rotated.length >= sent.length ? l : undefined;
  }, `${sent.length} access-log lines`);
  expect([...logged.rotated, ...logged.current].sort()).toEqual(sent);
  expect(logged.rotated.length).toBeGreaterThanOrEqual(200);
  expect(logged.current.length).toBeGreaterThanOrEqual(200);
});

test('a reopen that keeps failing makes logrotate fail, naming the error, after its retries', async () => {
  // GIVEN a bluegreen-nginx that cannot reach nginx (the container is gone, say)
  const broken = writeCommand('broken-nginx', 'echo "service \\"nginx\\" is not running" >&2; exit 1');

  // WHEN logrotate rotates
  const run = await rotate(broken, { BLUEGREEN_REOPEN_TRIES: '3' });

  // THEN logrotate exits non-zero and says why, with what to do
  expect(run.code).not.toBe(0);
  expect(run.stderr).toContain(`bluegreen-logrotate: nginx did not reopen its logs in ${logDir} after 3 tries`);
  expect(run.stderr).toContain('service "nginx" is not running');
  expect(run.stderr).toContain('sudo bluegreen-nginx -s reopen');
  expect(run.stderr.match(/try \d of 3/g)).toEqual(['try 1 of 3', 'try 2 of 3']);
  expect(run.stderr).toMatch(/error running shared postrotate script/);
  // ...and leaves the host as the RUNBOOK describes it: no access.log, access.log.1 growing...
  expect(existsSync(accessLog())).toBe(false);
  const rotated = path.join(logDir, 'access.log.1');
  const size = statSync(rotated).size;
  await httpRequest(`${stack.url}/version?after=failed-rotation`, { agent: false });
  await waitFor(() => statSync(rotated).size > size, 'access.log.1 to grow');
  expect(readFileSync(rotated, 'utf8')).toContain('after=failed-rotation');
  expect(existsSync(accessLog())).toBe(false);
  // ...and one line for the alarm in log-rotation-failures (the CloudWatch agent ships it)
  const failures = readFileSync(path.join(logDir, 'log-rotation-failures'), 'utf8').split('\n').filter(Boolean);
  expect(failures).toHaveLength(1);
  expect(failures[0]).toMatch(
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ bluegreen-logrotate: nginx did not reopen its logs in .* after 3 tries \(.*service "nginx" is not running/,
  );
  await reopenByHand();
});

test("through the host's global logrotate.conf (create, dateext): the stanza still renames to access.log.1 and leaves access.log to nginx", async () => {
  // GIVEN a bluegreen-nginx that exits 0 but never signals nginx (the check's only evidence is the files)
  const silent = writeCommand('silent-nginx-2', 'exit 0');

  // WHEN logrotate runs through AL2023's /etc/logrotate.conf, whose `create` would make access.log
  // itself and whose `dateext` would name the rotated file access.log-YYYYMMDD
  const run = await rotate(silent, { BLUEGREEN_REOPEN_TRIES: '1' });

  // THEN the stanza's nocreate/nodateext win: no dated file, access.log.1 there, access.log not, so
  // the reopen that never happened is seen and logrotate fails
  expect(readdirSync(logDir).filter((f) => /\.log-\d{8}/.test(f))).toEqual([]);
  expect(existsSync(path.join(logDir, 'access.log.1'))).toBe(true);
  expect(existsSync(accessLog())).toBe(false);
  expect(run.code).not.toBe(0);
  await reopenByHand();
});

test('a second rotation the same day (maxsize) rotates again, with no collision with the first', async () => {
  // GIVEN a rotation that worked today
  expect(await rotate(nginxCommand)).toMatchObject({ code: 0, stderr: '' });
  await httpRequest(`${stack.url}/version?second=1`, { agent: false });
  await waitFor(
    () => existsSync(accessLog()) && readFileSync(accessLog(), 'utf8').includes('second=1'),
    'a line in the new access.log',
  );

  // WHEN logrotate rotates again the same day (as maxsize does on a busy day)
  const second = await rotate(nginxCommand);

  // THEN it rotated: the second file is access.log.1, the first moved on to access.log.2 (then compressed next time)
  expect(second).toMatchObject({ code: 0, stderr: '' });
  expect(readFileSync(path.join(logDir, 'access.log.1'), 'utf8')).toContain('second=1');
  expect(existsSync(path.join(logDir, 'access.log.2.gz'))).toBe(true);
  await waitFor(() => existsSync(accessLog()), 'a new access.log');
});

test('a reopen command that succeeds without nginx reopening is a failure too', async () => {
  // GIVEN a bluegreen-nginx that exits 0 but never signals nginx
  const silent = writeCommand('silent-nginx', 'exit 0');

  // WHEN logrotate rotates
  const run = await rotate(silent, { BLUEGREEN_REOPEN_TRIES: '2' });

  // THEN the check after the signal sees that access.log was not created again
  expect(run.code).not.toBe(0);
  expect(run.stderr).toContain(`nginx did not create ${accessLog()} again`);
  await reopenByHand();
});

test('a reopen that fails once and then works is retried: the rotation succeeds and says so', async () => {
  // GIVEN a bluegreen-nginx that fails on its first call only
  const marker = path.join(work, 'failed-once');
  const flaky = writeCommand(
    'flaky-nginx',
    `if [ ! -e ${marker} ]; then touch ${marker}; echo "not yet" >&2; exit 1; fi\nexec ${nginxCommand} "$@"`,
  );

  // WHEN logrotate rotates
  const run = await rotate(flaky, { BLUEGREEN_REOPEN_TRIES: '3' });

  // THEN it succeeded on the second try and nginx writes to a new access.log
  expect(run.code).toBe(0);
  expect(run.stderr).toContain('try 1 of 3: `');
  expect(run.stderr).toContain('nginx reopened its logs');
  await waitFor(() => existsSync(accessLog()), 'a new access.log');
  rmSync(marker, { force: true });
});
