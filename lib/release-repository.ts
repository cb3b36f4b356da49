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
import { IMAGE_PLATFORM_PATTERN } from '../core/image-platform';

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
  /**
   * The hosts' `docker build --platform` (core/image-platform.ts imagePlatform of the instance type),
   * published as /bluegreen/<stage>/image-platform: `bluegreen build` cannot read the CDK context
   * the stage was deployed with.
   */
  readonly imagePlatform: string;
}

export class ReleaseRepository extends Construct {
  public readonly repository: ecr.Repository;
  /** The repository URI parameter /bluegreen/<stage>/ecr-repository (`bluegreen build` pushes there). */
  public readonly uriParameter: ssm.StringParameter;
  /** /bluegreen/<stage>/image-platform: the platform `bluegreen build` builds for. */
  public readonly platformParameter: ssm.StringParameter;

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
    if (!new RegExp(IMAGE_PLATFORM_PATTERN).test(props.imagePlatform))
      throw new Error(
        `ReleaseRepository: imagePlatform must match ${IMAGE_PLATFORM_PATTERN}, got "${props.imagePlatform}"`,
      );
    this.platformParameter = new ssm.StringParameter(this, 'PlatformParameter', {
      parameterName: names.imagePlatform,
      stringValue: props.imagePlatform,
      allowedPattern: IMAGE_PLATFORM_PATTERN,
      description: `bluegreen ${stage}: the platform release images are built for (the hosts' architecture)`,
    });
    new CfnOutput(this, 'Uri', {
      key: 'EcrRepositoryUri',
      value: this.repository.repositoryUri,
      description:
        'Push release images here (tags are immutable): npx bluegreen release --stage <stage> --build <dir> --release <id> builds, pushes and releases',
    });
  }
}
