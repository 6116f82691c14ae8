// Loads the compiled addon (build/Release/temper_engine.node) with a clear error when the
// build is missing, instead of Node's bare "Cannot find module".
import * as fs from 'node:fs';
import * as path from 'node:path';

const addonPath = path.join(__dirname, '..', 'build', 'Release', 'temper_engine.node');

function load(): NativeAddon {
  if (!fs.existsSync(addonPath)) {
    throw new Error(
      `@temper/native: the engine addon is not built (${path.relative(process.cwd(), addonPath)} is missing). ` +
        'Run `npm ci` or `npm run rebuild -w @temper/native`.',
    );
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(addonPath) as NativeAddon;
}

export interface BuildInfo {
  backends: string[];
  cudaCompiled: boolean;
  blas: string;
  blasThreads: number;
}

export interface NativeAddon {
  buildInfo(): BuildInfo;
  cudaDevices(): { count: number; reason?: string };
  sgemm(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array;
  setThreads(threads: number): void;
}

export const addon: NativeAddon = load();
