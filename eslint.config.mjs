// Lint: typescript-eslint with type information for server/ and client/ (floating
// promises, misused promises and awaits of non-promises are bugs here: an unhandled
// rejection ends the process), plain recommended rules for the JavaScript scripts.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: ['dist/**', '**/node_modules/**', 'server/generated/**', 'data/**', 'recordings/**', 'coverage/**', 'client/dist/**', 'client/examples/*/main.js'],
  },
  // The browser example is type-checked against the packed SDK (server/test/sdk-package.test.ts), not inside the repo.
  { ignores: ['client/examples/**/*.ts'] },
  js.configs.recommended,
  {
    files: ['server/**/*.ts', 'client/**/*.ts'],
    extends: [...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      // ffmpeg-static is optional: required lazily, inside a try.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^ffmpeg-static$'] }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-console': 'error',
    },
  },
  {
    // Where printing is the job: start-up failures before a logger exists, CLIs, tests, the browser pages.
    files: ['server/main.ts', 'server/db/migrate-cli.ts', 'server/protocol/docs-cli.ts', 'server/test/**', 'client/web/**', 'client/cli/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Tests drive untyped child-process protocols and socket payloads.
    files: ['server/test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['client/web/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { ...globals.node }, sourceType: 'module' },
    rules: { 'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }] },
  },
  { files: ['**/*.cjs', 'jest.config.js'], languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } } },
  prettier,
);
