/**
 * A bad value from the user (CDK context, env, flag, argument, parameter): reported as one line that
 * names the key and what it accepts, never a stack trace. The one error class every part throws for it.
 */
export class ConfigError extends Error {}
