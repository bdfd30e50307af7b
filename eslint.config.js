// Lint rules that catch real bugs in async daemon code; formatting is prettier's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', '.tmp/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // A mail proxy's parsers exist to find control characters: CR, LF, NUL, \x01 in XOAUTH2.
      'no-control-regex': 'off',
    },
  },
  {
    // The password's text is read by the vault and by the grants that send it to the provider.
    files: ['src/**/*.ts'],
    ignores: ['src/tokens/vault/**', 'src/tokens/unattended-grants.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/vault/passphrase.js', './passphrase.js'],
              importNames: ['textOf'],
              message: 'Only the vault and the grants that send the password read its text.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
