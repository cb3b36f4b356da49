// The AWS limits the code relies on (core/aws-limits.ts): each one stated by an AWS
// documentation page, and the code's own figures held to them.
import { AWS_LIMITS, AwsLimit, limit, MAX_FLEET_HOSTS } from '../../core/aws-limits';
import { STATE_MAX_BYTES } from '../../lambda/alert/aws';
import { FLEET_LIMITS } from '../../lib/stack-config';
import { hostReadParameterNames } from '../../core/names';
import { cliCommandComment } from '../../ops/stage-hosts';

test.each(Object.entries(AWS_LIMITS) as Array<[string, AwsLimit]>)(
  '%s: a positive number, worded and linked to docs.aws.amazon.com',
  (_name, l) => {
    expect(Number.isInteger(l.value) && l.value > 0).toBe(true);
    expect(l.doc).toMatch(/^https:\/\/docs\.aws\.amazon\.com\/\S+$/);
    expect(l.says.length).toBeGreaterThan(20);
    expect(l.usedBy.length).toBeGreaterThan(10);
  },
);

test('sizes are bytes: 4 KB and 8 KB parameters, 1 MB and 6 MB Lambda payloads', () => {
  expect([limit('standardParameterValue'), limit('advancedParameterValue')]).toEqual([4096, 8192]);
  expect([limit('lambdaAsyncPayload'), limit('lambdaSyncPayload')]).toEqual([1024 ** 2, 6 * 1024 ** 2]);
  expect(STATE_MAX_BYTES).toBe(limit('standardParameterValue'));
});

test("the fleet limit is Run Command's default concurrency, which is also the InstanceIds bound", () => {
  expect(FLEET_LIMITS.maxHosts).toBe(MAX_FLEET_HOSTS);
  expect(MAX_FLEET_HOSTS).toBe(limit('sendCommandDefaultConcurrency'));
  expect(limit('sendCommandDefaultConcurrency')).toBe(limit('sendCommandInstanceIds'));
});

test('a host reads its pool state in one GetParameters call (a fleet host reads the record apart)', () => {
  expect(hostReadParameterNames('a-twenty-char-stage1').length).toBeLessThanOrEqual(limit('getParametersNames'));
});

test("the CLI's command comment fits SendCommand's Comment", () => {
  expect(cliCommandComment('prod', 'x'.repeat(500))).toHaveLength(limit('sendCommandComment'));
});

test('ALB idle timeout: the documented range holds its default', () => {
  expect(limit('albIdleTimeoutMin')).toBeLessThanOrEqual(limit('albIdleTimeoutDefault'));
  expect(limit('albIdleTimeoutDefault')).toBeLessThanOrEqual(limit('albIdleTimeoutMax'));
});
