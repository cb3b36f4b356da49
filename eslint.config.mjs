// ESLint flat config. typescript-eslint comes from tools/lint, which pins its own TypeScript 6.0
// (the JS compiler API it parses with): the project's TypeScript 7 is the native compiler and has
// no such API yet (typescript-eslint#10940). See DECISIONS.md, "Lint and format".
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from '@bluegreen/lint';

export default defineConfig(
  {
    ignores: [
      'cdk.out/',
      '.bluegreen/',
      'bench/results/',
      'test/fixtures/',
      'tools/lint/node_modules/',
      'coverage/',
      '**/*.d.ts',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: { globals: globals.node },
    rules: {
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // A `let` that a cleanup closure reads before it is first assigned (test/docker/fleet.ts's lbDir)
      // is meant to be a let: const would need the value before the closure exists.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // Flags defensive initial values before a try or a loop; TypeScript's definite-assignment
      // check already covers the real mistake, and none of the findings was a bug.
      'no-useless-assignment': 'off',
    },
  },
  {
    // Plain CommonJS: the pool app (app/server.js runs on the image's node without a build step),
    // the bin shim and jest's config.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // jest.isolateModules(() => require(...)) and requiring a file found at run time are how the
      // tests load a fresh handler or aws-cdk-lib's own handler.
      '@typescript-eslint/no-require-imports': 'off',
      // Assertions over synthesized CloudFormation JSON, which has no type.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
