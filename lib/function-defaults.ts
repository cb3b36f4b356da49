// How every bluegreen Lambda function is built and run: Node 24 on Graviton (arm64), one minified
// CommonJS bundle with source maps (stack traces name our files), and the runtime's own AWS SDK v3
// (a smaller bundle, a faster init).
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { BundlingOptions, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';

export const FUNCTION_DEFAULTS: {
  runtime: lambda.Runtime;
  architecture: lambda.Architecture;
  bundling: BundlingOptions;
} = {
  runtime: lambda.Runtime.NODEJS_24_X,
  architecture: lambda.Architecture.ARM_64,
  bundling: {
    minify: true,
    sourceMap: true,
    format: OutputFormat.CJS,
    target: 'node24',
    externalModules: ['@aws-sdk/*'],
  },
};

/** The environment every function starts with: the bundle's source maps applied to stack traces. */
export const FUNCTION_ENV = { NODE_OPTIONS: '--enable-source-maps' } as const;
