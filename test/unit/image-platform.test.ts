// The platform release images are built for: the hosts' architecture, from the instance type.
import { cpuTypeFor } from '../../lib/pool-host';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { hostArch, IMAGE_PLATFORM_PATTERN, imagePlatform } from '../../core/image-platform';

test('Graviton families build linux/arm64, every other family linux/amd64', () => {
  const arm = [
    't4g.small',
    'm7g.large',
    'c7g.xlarge',
    'c7gn.medium',
    'r8g.large',
    'm6gd.large',
    'g5g.xlarge',
    'a1.medium',
    'x2gd.large',
    'im4gn.large',
  ];
  const x86 = [
    't3.small',
    't3a.small',
    'm7i.large',
    'c7a.large',
    'g5.xlarge',
    'inf2.xlarge',
    'm5zn.large',
    'p4d.24xlarge',
    'mac1.metal',
    'u-6tb1.metal',
  ];
  for (const t of arm) expect([t, imagePlatform(t)]).toEqual([t, 'linux/arm64']);
  for (const t of x86) expect([t, imagePlatform(t)]).toEqual([t, 'linux/amd64']);
  for (const t of [...arm, ...x86]) expect(new RegExp(IMAGE_PLATFORM_PATTERN).test(imagePlatform(t))).toBe(true);
});

test("the AMI the stack picks and the images' platform come from one rule", () => {
  for (const t of ['t4g.small', 'c7gn.medium', 'a1.large', 't3.small', 'm7i.large']) {
    const ami = cpuTypeFor(t) === ec2.AmazonLinuxCpuType.ARM_64 ? 'arm64' : 'amd64';
    expect([t, ami]).toEqual([t, hostArch(t)]);
  }
});
