// Slack's Roll back now on the Docker Engine harness: the Slack actions function's own code
// (lambda/slack-actions/runtime.ts) behind a loopback stand-in for its function URL, against the
// stage in moto_server (the ledger, the parameters, the signing secret, the allowlist) and the host's
// real Compose set. A release baking under full-speed keep-alive load from a client that never
// re-sends; a signed click rolls it back: 0 failed requests, the ledger names the person, the
// release command reports it, and the message is updated in place.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { parameterNames } from '../../core/names';
import { ledgerTableName } from '../../core/release-ledger';
import { SlackWork } from '../../core/slack-click';
import { summarize } from '../../local/load';
import { SlackActionsRuntime } from '../../lambda/slack-actions/runtime';
import { LedgerHistory } from '../../ops/release/ledger-history';
import { serveFunctionUrl } from '../helpers/function-url';
import { FULL_SPEED_LOAD, startLoad } from '../helpers/load';
import { motoClientConfig } from '../helpers/moto';
import { SIGNING_SECRET, signedClick } from '../helpers/slack-click';
import { startSlackReceiver } from '../helpers/slack-receiver';
import { waitFor } from '../helpers/stack';
import { describeWithDocker } from './compose-set';
import { dockerStageForSuite } from './release-stage';

const describeDocker = describeWithDocker(__filename);

describeDocker("Slack's Roll back now on the host Compose set", () => {
  const suite = dockerStageForSuite();

  test('a signed click under load rolls the baking release back: 0 failed, the ledger names the person', async () => {
    const { stage, set } = suite;
    const names = parameterNames(set.stage);
    const put = (Name: string, Value: string, Type: 'String' | 'SecureString' = 'String') =>
      stage.ssm.send(new PutParameterCommand({ Name, Value, Type, Overwrite: true }));
    await put(names.slackSigningSecret, SIGNING_SECRET, 'SecureString');
    await put(names.slackAllowedUsers, 'U012AB3CD');
    const ddb = new DynamoDBClient(motoClientConfig(set.moto));
    const slack = await startSlackReceiver();
    // The function: its receive path behind the URL; its asynchronous self-invocation, a later tick.
    const acted: Array<Promise<unknown>> = [];
    const runtime: SlackActionsRuntime = new SlackActionsRuntime(
      {
        stage: set.stage,
        ledgerTable: ledgerTableName(set.stage),
        signingSecretParam: names.slackSigningSecret,
        allowlistParam: names.slackAllowedUsers,
        activePoolParam: names.activePool,
        canaryParam: names.canaryPercent,
        responseUrlPrefix: 'http://127.0.0.1:',
      },
      {
        ssm: stage.ssm,
        ddb,
        log: () => undefined,
        invokeSelf: async (work: SlackWork) => {
          acted.push(new Promise((r) => setImmediate(r)).then(() => runtime.act(work)));
        },
      },
    );
    const url = await serveFunctionUrl((event) => runtime.receive(event));
    try {
      const load = startLoad({ url: `${set.url}/version`, ...FULL_SPEED_LOAD });
      await load.after(2_000, 'before the release');
      const release = stage.release({ release: 'v5', bakeSeconds: 120 });
      await waitFor(async () => (await stage.backend.readRecord())?.state === 'baking', 'the release to bake', 120_000);
      const baking = (await stage.backend.readRecord())!;
      await load.after(2_000, 'while it bakes');
      const click = signedClick({ kind: 'rollback', releaseId: baking.id, responseUrl: slack.url });
      const clickedAt = Date.now();
      const answer = await fetch(url.url, { method: 'POST', headers: click.headers, body: click.rawBody });
      const answeredMs = Date.now() - clickedAt;
      expect(answer.status).toBe(200);
      await Promise.all(acted);
      const active = async () =>
        (await stage.ssm.send(new GetParameterCommand({ Name: names.activePool }))).Parameter?.Value;
      expect(await active()).toBe(baking.previousPool);
      await waitFor(
        () => load.samples.slice(-200).every((s) => s.pool === baking.previousPool),
        `traffic back on ${baking.previousPool}`,
        30_000,
      );
      await load.after(2_000, 'after the rollback');
      const result = await load.finish();
      const summary = summarize(result.samples, result.durationMs);
      const { code, lines } = await release;
      process.stdout.write(
        `docker slack rollback: answered in ${answeredMs} ms; ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${lines.join('\n')}\n`,
      );
      expect(summary.failures).toEqual({});
      expect(code).toBe(1);
      expect(lines.join('\n')).toMatch(/ROLLED BACK by @alice \(U012AB3CD\) in Slack/);
      // The ledger: the head and the release's events name who decided.
      expect(await stage.backend.readRecord()).toMatchObject({
        id: baking.id,
        state: 'rolled-back',
        decidedBy: '@alice (U012AB3CD) in Slack',
      });
      const events = await new LedgerHistory(ddb, ledgerTableName(set.stage)).events(baking.id);
      expect(events.at(-1)).toMatchObject({ state: 'rolled-back', decidedBy: '@alice (U012AB3CD) in Slack' });
      expect(String(slack.received.at(-1)?.body.text)).toMatch(/Rolled back by @alice at \d\d:\d\d UTC/);
    } finally {
      await url.close();
      slack.close();
      ddb.destroy();
    }
  }, 300_000);
});
