// Durations as the CLI takes them (`--bake 2m`, `load --duration 90s`): one parser for every command.
import { ConfigError } from './config-error';
import { MAX_DURATION_SECONDS } from './release-record';

/** 30s, 2m, 1h, 90 (seconds), 1m30s → seconds. Throws naming the flag. */
export function parseDuration(value: string, flag: string, maxSeconds = MAX_DURATION_SECONDS): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$/.exec(value.trim());
  if (!value.trim() || !m || (m[1] === undefined && m[2] === undefined && m[3] === undefined)) {
    throw new ConfigError(`${flag} must be a duration like 30s, 2m or 1h, got "${value}"`);
  }
  const seconds = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  if (seconds < 1 || seconds > maxSeconds)
    throw new ConfigError(
      `${flag} must be between 1s and ${maxSeconds === MAX_DURATION_SECONDS ? '24h' : `${maxSeconds}s`}, got "${value}"`,
    );
  return seconds;
}

/** A time in ms: 500ms, 2s, 1.5s. Throws naming the flag. */
export function parseMilliseconds(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(value.trim());
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
  if (!m || !(n >= 1) || n > MAX_DURATION_SECONDS * 1000)
    throw new ConfigError(`${flag} must be a time like 500ms or 2s (at least 1ms), got "${value}"`);
  return n;
}
