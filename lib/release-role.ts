// Who may release a stage besides a person at a terminal: the operators' managed policy (README's
// "Operators' IAM", generated from lib/operator-policy.ts) and, with context githubRepo, a role that
// GitHub Actions jobs of exactly one repository (and one environment, or main) assume through OIDC,
// with that policy and nothing else. No long-lived keys: a job gets credentials for at most an hour.
import { Aws, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { operatorPolicyDocument } from './operator-policy';
import type { GithubReleaseConfig } from './stack-config';

/** GitHub's OIDC issuer for Actions; the trust's condition keys are named after it. */
export const GITHUB_OIDC_ISSUER = 'token.actions.githubusercontent.com';
/** The audience aws-actions/configure-aws-credentials asks GitHub for (its default). */
export const GITHUB_OIDC_AUDIENCE = 'sts.amazonaws.com';
/** The branch a repository without an environment releases from. */
export const GITHUB_RELEASE_BRANCH = 'main';
/**
 * A role session's longest life (IAM's minimum is 1 h, its default too): a release with the longest
 * default bake fits; the server-side guard finishes a bake on its own if the job's credentials end.
 */
export const RELEASE_SESSION = Duration.hours(1);

export const operatorPolicyName = (stage: string) => `bluegreen-${stage}-operator`;
export const releaseRoleName = (stage: string) => `bluegreen-${stage}-release`;

/**
 * The `sub` claim of the GitHub token that may assume the role: the job's environment when the
 * repository releases through one (GitHub puts the environment in the subject instead of the ref),
 * else a push (or a dispatch) on main. Exact: IAM compares it with StringEquals, no wildcard.
 */
export function githubSubject(github: Pick<GithubReleaseConfig, 'repository' | 'environment'>): string {
  return github.environment !== undefined
    ? `repo:${github.repository}:environment:${github.environment}`
    : `repo:${github.repository}:ref:refs/heads/${GITHUB_RELEASE_BRANCH}`;
}

export interface ReleaseRoleProps {
  readonly stage: string;
  /** The repository whose jobs may release; undefined = the managed policy only, no role. */
  readonly github?: GithubReleaseConfig;
}

export class ReleaseRole extends Construct {
  /** `bluegreen-<stage>-operator`: attach it to the people (or roles) that run the CLI on the stage. */
  public readonly operatorPolicy: iam.ManagedPolicy;
  /** `bluegreen-<stage>-release`, with context githubRepo. */
  public readonly role?: iam.Role;
  /** The OIDC provider the role trusts (created here, or the account's given one), with context githubRepo. */
  public readonly provider?: iam.IOidcProvider;

  constructor(scope: Construct, id: string, props: ReleaseRoleProps) {
    super(scope, id);
    const { stage } = props;
    this.operatorPolicy = new iam.ManagedPolicy(this, 'OperatorPolicy', {
      managedPolicyName: operatorPolicyName(stage),
      description: `bluegreen ${stage}: what npx bluegreen needs with --stage ${stage} (README "Operators' IAM")`,
      document: iam.PolicyDocument.fromJson(
        operatorPolicyDocument({ partition: Aws.PARTITION, region: Aws.REGION, account: Aws.ACCOUNT_ID, stage }),
      ),
    });
    this.acknowledgeOperatorPolicy(stage);
    if (!props.github) return;

    this.provider = this.githubProvider(props.github);
    this.role = new iam.Role(this, 'Role', {
      roleName: releaseRoleName(stage),
      description: `bluegreen ${stage}: releases from GitHub Actions, ${githubSubject(props.github)} only`,
      assumedBy: new iam.WebIdentityPrincipal(this.provider.oidcProviderArn, {
        StringEquals: {
          [`${GITHUB_OIDC_ISSUER}:aud`]: GITHUB_OIDC_AUDIENCE,
          [`${GITHUB_OIDC_ISSUER}:sub`]: githubSubject(props.github),
        },
      }),
      maxSessionDuration: RELEASE_SESSION,
      // The operators' policy and nothing else: a CI job may do what a person on the stage may do.
      managedPolicies: [this.operatorPolicy],
    });
  }

  /**
   * An account has one provider per issuer URL: the first stage creates it, the others are given
   * its ARN. Kept on `cdk destroy`, like the ECR repository: another stage's role may trust it (a
   * later deploy of this stage is given its ARN then).
   */
  private githubProvider(github: GithubReleaseConfig): iam.IOidcProvider {
    if (github.oidcProviderArn)
      return iam.OidcProviderNative.fromOidcProviderArn(this, 'GithubProvider', github.oidcProviderArn);
    // The native AWS::IAM::OIDCProvider (OpenIdConnectProvider would add a custom resource and its
    // Lambda). No thumbprint: IAM trusts GitHub's certificate through its own root CAs.
    return new iam.OidcProviderNative(this, 'GithubProvider', {
      url: `https://${GITHUB_OIDC_ISSUER}`,
      clientIds: [GITHUB_OIDC_AUDIENCE],
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** cdk-nag's findings on the operators' policy: the wildcards README's policy has, each with its reason. */
  private acknowledgeOperatorPolicy(stage: string): void {
    const ack = (resource: string, reason: string) =>
      Validations.of(this.operatorPolicy).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::${resource}]`,
        reason,
      });
    const arn = (service: string, resource: string) =>
      `arn:<AWS::Partition>:${service}:<AWS::Region>:<AWS::AccountId>:${resource}`;
    ack(
      arn('ssm', `parameter/bluegreen/${stage}/pools/*`),
      `Each pool's desired state (image, release, env, options of blue and green): /bluegreen/${stage}/pools/ holds nothing else; a release writes the idle pool's, either pool may be the idle one.`,
    );
    ack(
      arn('ssm', `parameter/bluegreen/${stage}/secrets/*`),
      `The stage's secrets (bluegreen secret set/rm/list): /bluegreen/${stage}/secrets/ holds nothing else, and names are added by operators without a stack deploy.`,
    );
    ack(
      arn('secretsmanager', 'secret:*'),
      `DescribeSecret (a version id, no value) only on secrets tagged BluegreenStage=${stage} (aws:ResourceTag condition): a secret's ARN ends in random characters, so the tag is the boundary.`,
    );
    ack(
      arn('ec2', 'instance/*'),
      `ssm:SendCommand to the stage's hosts only (ssm:resourceTag/BluegreenStage=${stage} condition) and only with the AWS-RunShellScript document: hosts are replaced on every host change, so their ids are not known in advance.`,
    );
    ack(
      arn('logs', `log-group:/bluegreen/${stage}/nginx/access:*`),
      "logs:StartQuery on the stage's access log group: a log group's ARN ends in :* (the form AWS authorizes the group-level action on), not a wildcard over other groups.",
    );
    ack(
      arn('logs', `log-group:/bluegreen/${stage}/app:*`),
      "logs:FilterLogEvents on the stage's app log group: a log group's ARN ends in :* (the form AWS authorizes the group-level action on), not a wildcard over other groups.",
    );
    ack(
      '*',
      'Actions without resource-level permissions (Service Authorization Reference): the Run Command reads ListCommands, ListCommandInvocations, GetCommandInvocation, DescribeInstanceInformation; logs:GetQueryResults (by query id); ecr:GetAuthorizationToken (the registry login). All read-only but the login, whose pushes are limited to the stage repository.',
    );
  }
}
