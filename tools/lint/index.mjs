// typescript-eslint, loaded from this folder so that its `typescript` is this package's 6.0 (see package.json).
export { default } from 'typescript-eslint';
