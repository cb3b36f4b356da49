// The platform a stage's release images are built for: the hosts' CPU architecture, which follows
// from the instance type (Graviton families run arm64). The stack picks the host's AMI by it and
// publishes it in the stage's image-platform parameter; `bluegreen build` reads that parameter,
// since the CLI cannot see the CDK context a stage was deployed with.

/** A host CPU architecture as Docker names it. */
export type ImageArch = 'amd64' | 'arm64';

/** `docker build --platform` values a stage publishes (the parameter's AllowedPattern too). */
export const IMAGE_PLATFORM_PATTERN = '^linux/(amd64|arm64)$';

/**
 * Graviton instance families (a1, t4g, m7g, c7gn, r8g, ...): a family name whose generation digit is
 * followed by `g` (`m7g`, `c7gn`, `g5g`); a1 is the first Graviton and has no `g`. Everything else
 * (t3, m7i, c7a, g5, inf2, ...) is x86-64.
 */
export function hostArch(instanceType: string): ImageArch {
  const family = instanceType.split('.')[0];
  return family === 'a1' || /^[a-z]+\d+g/.test(family) ? 'arm64' : 'amd64';
}

/** The `docker build --platform` value for a stage's hosts. */
export function imagePlatform(instanceType: string): string {
  return `linux/${hostArch(instanceType)}`;
}
