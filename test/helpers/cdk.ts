// Builds the real app for infra tests: cdk.json's context (jest's App ignores cdk.json) plus
// overrides, with asset bundling skipped (no bundling step in this app's synth is under test).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Tags } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../bin/app';
import { REPO_ROOT } from '../../local/paths';

export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8'),
).context;

export function newApp(context: Record<string, unknown> = {}, outdir?: string): App {
  return new App({ outdir, context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context } });
}

export interface SynthOptions {
  /** Tags applied to the whole app, as an operator's `Tags.of(app).add(...)` (or `cdk deploy --tags`) would. */
  readonly tags?: Record<string, string>;
}

export function synthTemplate(context: Record<string, unknown> = {}, options: SynthOptions = {}): Template {
  const app = newApp(context);
  const stack = buildApp(app);
  for (const [key, value] of Object.entries(options.tags ?? {})) Tags.of(app).add(key, value);
  return Template.fromStack(stack);
}
