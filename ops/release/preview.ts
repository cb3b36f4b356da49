// The preview token of a release (core/preview.ts): random per release, from the OS's CSPRNG.
import { randomBytes } from 'node:crypto';
import { PREVIEW_TOKEN_BYTES } from '../../core/preview';

/** 24 random bytes as base64url: 32 characters, 192 bits (matches PREVIEW_TOKEN_PATTERN). */
export function newPreviewToken(): string {
  return randomBytes(PREVIEW_TOKEN_BYTES).toString('base64url');
}
