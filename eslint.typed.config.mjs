// `npm run lint:typed`: the base config plus the rules that need type information (TypeScript 6's
// program of the whole tsconfig.json). About ten times slower than `npm run lint` on the 2-core
// machine, so it is not part of `npm test`; run it before a release or after touching async code.
import base from './eslint.config.mjs';

export default [
  ...base,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
];
