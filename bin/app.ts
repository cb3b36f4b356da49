// The CDK app: context in (cdk.json and -c key=value), validated, one stack per stage out.
// Synthesizes offline: no lookups, no account-specific context.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BlueGreenStack, stackName } from '../lib/bluegreen-stack';
import { ConfigError } from '../core/config-error';
import { parseConfig } from '../lib/stack-config';

export function buildApp(app: App): BlueGreenStack {
  const config = parseConfig(app.node.getAllContext());
  const stack = new BlueGreenStack(app, stackName(config.stage), {
    config,
    description: `bluegreen ${config.stage}: nginx + blue/green pools on EC2 with failover inside each request`,
    // No env: one environment-agnostic template, deployed to whatever account/region the CLI uses.
  });
  // Every synth runs the AWS Solutions checks: a finding without a written reason fails it.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}

if (require.main === module) {
  const app = new App();
  try {
    buildApp(app);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`bluegreen: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  app.synth();
}
