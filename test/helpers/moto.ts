// A real moto_server (AWS API emulator) on a free loopback port, for the AWS calls our scripts and
// code make. Environment for the aws CLI / SDK points at it with dummy credentials.
import { CloudWatchLogsClient, CreateLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, ledgerTableName } from '../../core/release-ledger';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../local/ports';
import { waitFor } from './stack';

export interface Moto {
  endpoint: string;
  /** Environment for the aws CLI and the SDK: the endpoint, a region, dummy credentials, no user config. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  let failed: Error | undefined;
  child.once('error', (e) => (failed = new Error(`moto_server could not start (is moto installed?): ${e.message}`)));
  await waitFor(async () => failed !== undefined || (await listening(port)), 'moto_server to listen', 30_000);
  if (failed) throw failed;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_CONFIG_FILE: path.join(mkdtempSync(path.join(os.tmpdir(), 'bluegreen-aws-')), 'config'),
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    },
  };
}

/** Writes String parameters to moto as an operator (or the release CLI) would, one put each (SDK: no CLI start-up per value). */
export async function putParameters(moto: Moto, values: Record<string, string>): Promise<void> {
  const ssm = new SSMClient({
    endpoint: moto.endpoint,
    region: moto.env.AWS_REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  try {
    for (const [name, value] of Object.entries(values)) {
      await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'String', Overwrite: true }));
    }
  } finally {
    ssm.destroy();
  }
}

/** Creates a log group in moto as the stack would; one that exists already is left as it is. */
export async function createLogGroup(moto: Moto, name: string): Promise<void> {
  const logs = new CloudWatchLogsClient({
    endpoint: moto.endpoint,
    region: moto.env.AWS_REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  try {
    await logs.send(new CreateLogGroupCommand({ logGroupName: name }));
  } catch (err) {
    if ((err as Error).name !== 'ResourceAlreadyExistsException') throw err;
  } finally {
    logs.destroy();
  }
}

/** An SDK client of moto (the same endpoint, region and dummy credentials as `env`). */
export function motoClientConfig(moto: Moto) {
  return {
    endpoint: moto.endpoint,
    region: moto.env.AWS_REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

/**
 * Creates the stage's release ledger in moto as the stack would (lib/release-ledger.ts: the same
 * name and keys from core/release-ledger.ts, on demand); one that exists already is left as it is.
 */
export async function createLedgerTable(moto: Moto, stage: string): Promise<void> {
  const ddb = new DynamoDBClient(motoClientConfig(moto));
  try {
    await ddb.send(
      new CreateTableCommand({
        TableName: ledgerTableName(stage),
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: LEDGER_PARTITION_KEY, AttributeType: 'S' },
          { AttributeName: LEDGER_SORT_KEY, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: LEDGER_PARTITION_KEY, KeyType: 'HASH' },
          { AttributeName: LEDGER_SORT_KEY, KeyType: 'RANGE' },
        ],
      }),
    );
  } catch (err) {
    if ((err as Error).name !== 'ResourceInUseException') throw err;
  } finally {
    ddb.destroy();
  }
}
