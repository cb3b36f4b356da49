// The documented command that stores the Slack webhook, run as written with the machine's AWS CLI
// (v1 here) against moto_server. AWS CLI v1 fetches an `https://` value given as `--value` (and
// stores the page it got, or fails with no network), so the docs use JSON input, which both CLI
// versions store as written. Every place that tells an operator the command is checked.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../local/paths';
import { Moto, startMoto } from '../helpers/moto';

const run = promisify(execFile);
const WEBHOOK = 'https://hooks.slack.com/services/T000/B000/XXXXXXXX';

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => moto?.stop());

const doc = (file: string) => readFileSync(path.join(REPO_ROOT, file), 'utf8');

/** Every `aws ssm put-parameter …` command for the webhook in a document, as it is written there. */
function webhookCommands(text: string): string[] {
  return [...text.matchAll(/aws ssm put-parameter [^\n`]*slack-webhook-url[^\n`]*/g)].map((m) => m[0].trim());
}

const shell = async (command: string) => run('sh', ['-c', command], { env: { ...process.env, ...moto.env } });

test.each(['README.md', 'RUNBOOK.md'])(
  '%s: the webhook command stores the URL as written, with AWS CLI v1',
  async (file) => {
    const commands = webhookCommands(doc(file));
    expect(commands.length).toBeGreaterThan(0);
    for (const [i, written] of commands.entries()) {
      const name = `/bluegreen/doc${i}-${file.replace(/\W/g, '').toLowerCase()}/slack-webhook-url`;
      // Only the placeholders change: the stage and the webhook's secret part.
      const command = written
        .replace(/\/bluegreen\/(<stage>|prod)\/slack-webhook-url/, name)
        .replace('https://hooks.slack.com/services/…', WEBHOOK);
      expect(command).not.toBe(written);
      await shell(command);
      const { stdout } = await shell(
        `aws ssm get-parameter --name ${name} --with-decryption --query 'Parameter.[Type,Value]' --output text`,
      );
      expect(stdout.trim().split(/\s+/)).toEqual(['SecureString', WEBHOOK]);
    }
  },
);

test('the form the docs avoid really does not store the URL with AWS CLI v1', async () => {
  const { stdout } = await shell('aws --version 2>&1');
  if (!stdout.startsWith('aws-cli/1.')) return; // AWS CLI v2 stores it as written (no URL fetching)
  // Without network it fails to fetch the URL; with network it stores the page it fetched.
  const stored = await shell(
    `aws ssm put-parameter --name /bluegreen/avoid/slack-webhook-url --type SecureString --value '${WEBHOOK}'`,
  ).then(
    () =>
      shell(
        'aws ssm get-parameter --name /bluegreen/avoid/slack-webhook-url --with-decryption --query Parameter.Value --output text',
      ).then((r) => r.stdout.trim()),
    (err: Error) => `refused: ${err.message}`,
  );
  expect(stored).not.toBe(WEBHOOK);
});

test('no document or stack output tells an operator to pass the webhook as --value', () => {
  for (const file of ['README.md', 'RUNBOOK.md', 'lib/bluegreen-stack.ts']) {
    expect(doc(file)).not.toMatch(/slack-webhook-url[^\n]*--value/);
  }
  expect(doc('lib/bluegreen-stack.ts')).toContain('put-parameter --cli-input-json');
});
