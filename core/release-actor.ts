// Who acts on a release, as the ledger records it: a CI run's URL from the runner's environment, and
// the names the decisions carry. Pure: the environment is passed in.

/**
 * The URL of the CI run this process is part of, from the runner's documented variables; undefined
 * outside CI. GitHub Actions: `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`
 * (and the attempt, when it is a re-run).
 */
export function ciRunUrl(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run, GITHUB_RUN_ATTEMPT: attempt } = env;
  if (!server || !repo || !run || !/^\d+$/.test(run)) return undefined;
  const url = `${server.replace(/\/+$/, '')}/${repo}/actions/runs/${run}`;
  return attempt && attempt !== '1' && /^\d+$/.test(attempt) ? `${url}/attempts/${attempt}` : url;
}
