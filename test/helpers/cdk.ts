// Builds the real app for infra tests: cdk.json's context (jest's App ignores cdk.json) plus
// overrides, with asset bundling skipped (no bundling step in this app's synth is under test).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../bin/app';
import { REPO_ROOT } from '../../local/defaults';

export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')).context;

export function newApp(context: Record<string, unknown> = {}, outdir?: string): App {
  return new App({ outdir, context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context } });
}

export function synthTemplate(context: Record<string, unknown> = {}): Template {
  const app = newApp(context);
  const stack = buildApp(app);
  return Template.fromStack(stack);
}
