// The stage's container registry: ECR repository bluegreen-<stage>, where release images are pushed
// (`docker push <uri>:<tag>`) and from which the host pulls (`bluegreen release --image <uri>:<tag>`).
//
// Tags are IMMUTABLE: a release record names image:tag, and the gate proved exactly those bits; a
// rollback pulls the previous tag again and must get the same image. A re-pushed tag could change a
// pool's code behind a release record (or make a host pull something nobody gated). Push a new tag
// per build (the release id is a good one); "latest" cannot be re-pushed, which is the point.
import { CfnOutput, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { ecrRepositoryName, parameterNames } from '../core/names';

export interface ReleaseRepositoryProps {
  readonly stage: string;
  /**
   * Images kept; older ones expire. Keep enough for the pools' current and previous releases and a
   * few to roll back to by hand.
   * @default 30
   */
  readonly keepImages?: number;
  /**
   * The images are the release artifacts (and rollback targets): they outlive `cdk destroy` unless
   * told otherwise. A retained repository must be deleted (or imported) before the stage is
   * deployed again.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

export class ReleaseRepository extends Construct {
  public readonly repository: ecr.Repository;
  /** The repository URI parameter /bluegreen/<stage>/ecr-repository (for operators' push commands; no code reads it). */
  public readonly uriParameter: ssm.StringParameter;

  constructor(scope: Construct, id: string, props: ReleaseRepositoryProps) {
    super(scope, id);
    const { stage } = props;
    const keep = props.keepImages ?? 30;
    this.repository = new ecr.Repository(this, 'Repository', {
      repositoryName: ecrRepositoryName(stage),
      imageScanOnPush: true,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      // AES-256 with ECR's own keys: encrypted at rest with no key policy to keep and no kms:Decrypt
      // grant for the host; a customer-managed KMS key adds cost and a second policy for no gain here.
      encryption: ecr.RepositoryEncryption.AES_256,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          rulePriority: 1,
          description: 'untagged images (interrupted pushes) expire after 7 days',
          tagStatus: ecr.TagStatus.UNTAGGED,
          maxImageAge: Duration.days(7),
        },
        {
          rulePriority: 2,
          description: `keep the last ${keep} images`,
          tagStatus: ecr.TagStatus.ANY,
          maxImageCount: keep,
        },
      ],
    });

    // CDK leaves AES-256 (ECR's default) out of the template; say it there too, for reviewers and cfn-lint.
    (this.repository.node.defaultChild as ecr.CfnRepository).addPropertyOverride('EncryptionConfiguration', {
      EncryptionType: 'AES256',
    });

    const names = parameterNames(stage);
    this.uriParameter = new ssm.StringParameter(this, 'UriParameter', {
      parameterName: names.ecrRepository,
      stringValue: this.repository.repositoryUri,
      description: `bluegreen ${stage}: the ECR repository release images are pushed to`,
    });
    new CfnOutput(this, 'Uri', {
      key: 'EcrRepositoryUri',
      value: this.repository.repositoryUri,
      description:
        'Push release images here (tags are immutable), then: npx bluegreen release --stage <stage> --image <uri>:<tag> --release <id>',
    });
  }
}
