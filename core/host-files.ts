// The files the host scripts read their facts from, generated from core so the shell never keeps a
// copy: `npm run generate` writes them, test/unit/host-files.test.ts fails when one is stale. Each is
// a repository path (relative, `/`-separated) and its exact content.
import { POOL_ENV_RULE } from './pool-env';

/** The generated files' banner: a reader of the host file learns where to change it. */
export const GENERATED_BY = 'Generated from core/ by `npm run generate` (core/host-files.ts): do not edit.';

export const GENERATED_HOST_FILES: Readonly<Record<string, () => string>> = {
  // JSON has no comments: the banner is a field jq never reads.
  'userdata/pool-env.json': () => `${JSON.stringify({ generated: GENERATED_BY, ...POOL_ENV_RULE }, null, 2)}\n`,
};
