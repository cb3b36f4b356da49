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
import { parameterNames, secretParameterName } from '../../core/names';
import { SecretStore, StoredSecret } from '../../core/secrets';

export class AwsSecretStore implements SecretStore {
  readonly target: string;
  constructor(
    private readonly ssm: SSMClient,
    private readonly stage: string,
  ) {
    this.target = `stage ${stage}`;
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
