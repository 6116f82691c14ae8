// Certificates made for a test run with openssl: a CA and the leaf certificates it signs
// (server and client), in a temporary directory. No key is ever committed.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface CertificateFiles {
  cert: string;
  key: string;
}

export interface TestCa extends CertificateFiles {
  /** A certificate for `cn`, with DNS localhost, IP 127.0.0.1 and `dnsNames`, for servers and clients alike. */
  issue(cn: string, dnsNames?: string[]): CertificateFiles;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeTestCa(dir: string, name: string): TestCa {
  fs.mkdirSync(dir, { recursive: true });
  const ca = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  openssl(['req', '-x509', ...newKey, '-keyout', ca.key, '-out', ca.cert, '-days', '2', '-subj', `/CN=${name}`]);
  return {
    ...ca,
    issue(cn, dnsNames = []) {
      const base = path.join(dir, `${name}-${cn}`);
      const leaf = { cert: `${base}.crt`, key: `${base}.key` };
      fs.writeFileSync(`${base}.ext`, `subjectAltName=${['DNS:localhost', 'IP:127.0.0.1', ...dnsNames.map((d) => `DNS:${d}`)].join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
      openssl(['req', ...newKey, '-keyout', leaf.key, '-out', `${base}.csr`, '-subj', `/CN=${cn}`]);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', leaf.cert, '-days', '2', '-extfile', `${base}.ext`]);
      return leaf;
    },
  };
}
