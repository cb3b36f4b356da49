// A deployed stage's secrets in Parameter Store: /bluegreen/<stage>/secrets/<NAME>. A value is a
// SecureString (the account's aws/ssm key); a Secrets Manager reference is a String holding
// `<secret ARN>[:<json key>]`, told apart by its type. Listing never decrypts.
import {
  DeleteParameterCommand,
  GetParametersByPathCommand,
  Parameter,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parameterNames, secretParameterName } from '../../core/names';
import { SECRET_VERSION_ID_PATTERN, whole } from '../../core/pool-options';
import { parseSecretsManagerRef, secretsManagerPin, SecretStore, StoredSecret } from '../../core/secrets';
import { sdkRetryConfig } from '../../core/ssm-budget';

/** The stage label Secrets Manager gives the version a GetSecretValue without a version returns. */
const CURRENT = 'AWSCURRENT';

export class AwsSecretStore implements SecretStore {
  readonly target: string;
  private readonly secretsManager: Pick<SecretsManagerClient, 'send'>;
  constructor(
    private readonly ssm: SSMClient,
    private readonly stage: string,
    secretsManager?: Pick<SecretsManagerClient, 'send'>,
  ) {
    this.target = `stage ${stage}`;
    // Same region and credentials as the SSM client: one --region/--profile for the whole command.
    this.secretsManager =
      secretsManager ??
      new SecretsManagerClient({
        region: ssm.config.region,
        credentials: ssm.config.credentials,
        ...sdkRetryConfig(),
      });
  }

  private stored(p: Parameter): StoredSecret {
    const name = (p.Name ?? '').slice(parameterNames(this.stage).secretsPath.length);
    const reference = p.Type === 'String' ? p.Value : undefined;
    return {
      name,
      kind: reference ? 'secrets-manager' : 'parameter-store',
      version: p.Version ?? 0,
      lastModified: (p.LastModifiedDate ?? new Date(0)).toISOString(),
      ...(reference ? { reference } : {}),
    };
  }

  async list(): Promise<StoredSecret[]> {
    const out: StoredSecret[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ssm.send(
        new GetParametersByPathCommand({
          Path: parameterNames(this.stage).secretsPath.replace(/\/$/, ''),
          Recursive: false,
          WithDecryption: false,
          NextToken,
        }),
      );
      for (const p of page.Parameters ?? []) out.push(this.stored(p));
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }

  private async put(name: string, value: string, type: 'SecureString' | 'String'): Promise<StoredSecret> {
    const res = await this.ssm.send(
      new PutParameterCommand({
        Name: secretParameterName(this.stage, name),
        Value: value,
        Type: type,
        Overwrite: true,
        Description: `bluegreen ${this.stage}: secret ${name} (bluegreen secret set); pools get it through a release`,
      }),
    );
    return {
      name,
      kind: type === 'String' ? 'secrets-manager' : 'parameter-store',
      version: res.Version ?? 0,
      lastModified: new Date().toISOString(),
      ...(type === 'String' ? { reference: value } : {}),
    };
  }

  set(name: string, value: string): Promise<StoredSecret> {
    return this.put(name, value, 'SecureString');
  }

  setReference(name: string, reference: string): Promise<StoredSecret> {
    return this.put(name, reference, 'String');
  }

  /**
   * DescribeSecret (names the versions and their stages, never a value): the version labelled
   * AWSCURRENT. The host then fetches exactly that version (get-secret-value --version-id).
   */
  async pinReference(reference: string): Promise<string> {
    const { arn } = parseSecretsManagerRef(reference);
    let stages: Record<string, string[]> | undefined;
    try {
      stages = (await this.secretsManager.send(new DescribeSecretCommand({ SecretId: arn }))).VersionIdsToStages;
    } catch (err) {
      throw new Error(`could not read ${arn}'s current version from Secrets Manager: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const current = Object.entries(stages ?? {}).find(([, labels]) => labels.includes(CURRENT))?.[0];
    if (!current) throw new Error(`${arn} has no version labelled ${CURRENT} (does it hold a value yet?)`);
    if (!whole(SECRET_VERSION_ID_PATTERN).test(current))
      throw new Error(`${arn}'s current version id "${current}" is not ${SECRET_VERSION_ID_PATTERN}`);
    return secretsManagerPin(reference, current);
  }

  async remove(name: string): Promise<boolean> {
    try {
      await this.ssm.send(new DeleteParameterCommand({ Name: secretParameterName(this.stage, name) }));
      return true;
    } catch (err) {
      if ((err as Error).name === 'ParameterNotFound') return false;
      throw err;
    }
  }
}
