// One Jest run over every workspace. Tests are TypeScript, transpiled by ts-jest without
// type-checking (tsc -b does that); workspace imports resolve to their sources so a test
// always runs the code beside it. Processes a test spawns run the built dist/ (npm test builds).
const fs = require('node:fs');
const path = require('node:path');

const root = __dirname;
const workspaces = require('./package.json').workspaces;
const moduleNameMapper = {};
for (const ws of workspaces) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, ws, 'package.json'), 'utf8'));
  const src = JSON.parse(fs.readFileSync(path.join(root, ws, 'tsconfig.json'), 'utf8')).compilerOptions.rootDir;
  moduleNameMapper[`^${pkg.name.replace('/', '\\/')}$`] = `<rootDir>/${ws}/${src}`;
}
// Dependencies published only as ES modules. Node loads them with require() (require(esm),
// Node >= 20.19); Jest's own module system cannot, so they are compiled to CommonJS for it.
const esmOnly = ['hyparquet', 'hyparquet-compressors', 'hyparquet-writer', 'hysnappy'];

module.exports = {
  rootDir: root,
  testEnvironment: 'node',
  roots: ['<rootDir>/native', '<rootDir>/packages', '<rootDir>/services', '<rootDir>/apps', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  moduleNameMapper,
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }],
    [`/node_modules/(${esmOnly.join('|')})/.+\\.js$`]: ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', isolatedModules: true } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
