// Once, before any test file: a missing tool is named with its install line here, instead of
// surfacing as dozens of unrelated failures later.
import { missingTools, missingToolsMessage } from './tools';

export default function globalSetup(): void {
  const missing = missingTools();
  if (missing.length > 0) throw new Error(missingToolsMessage(missing));
}
