// A Kubernetes API server stand-in on loopback that answers from stored responses
// (test/fixtures/k8s/*.json: the API server's JSON bodies and status codes for each request),
// plus the API server's pod port-forward (WebSocket, v4.channel.k8s.io) tunnelled to a real
// local TCP port. Requests without a stored response get a 404 Status and are remembered,
// so a test can assert that nothing unexpected was asked.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Interaction {
  request: { method: string; path: string };
  response: { status: number; contentType?: string; body: unknown };
}

export interface Fixture {
  /** What the responses show; the request paths are those client-node sends. */
  description: string;
  interactions: Interaction[];
}

export function loadFixture(name: string): Fixture {
  return JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'k8s', `${name}.json`), 'utf8')) as Fixture;
}

// Path plus sorted, decoded query: the same request in any parameter order matches.
function canonical(url: string): string {
  const u = new URL(url, 'http://x');
  const q = [...u.searchParams.entries()].sort(([a], [b]) => a.localeCompare(b));
  return u.pathname + (q.length ? '?' + q.map(([k, v]) => `${k}=${v}`).join('&') : '');
}

export interface ReplayServer {
  url: string;
  /** Requests that had no stored response. */
  unmatched: string[];
  /** Every request, in order ("GET /api/v1/..."). */
  seen: string[];
  close(): Promise<void>;
}

export interface ReplayOptions {
  /** pod port -> local port: where a port-forward to that pod port really connects. */
  portForward?: Record<number, number>;
}

export async function startReplay(fixtures: Fixture[], opts: ReplayOptions = {}): Promise<ReplayServer> {
  const table = new Map<string, Interaction>();
  for (const f of fixtures) for (const i of f.interactions) table.set(`${i.request.method} ${canonical(i.request.path)}`, i);
  const unmatched: string[] = [];
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();

  const server = http.createServer((req, res) => {
    const key = `${req.method} ${canonical(req.url ?? '/')}`;
    seen.push(key);
    const hit = table.get(key);
    if (!hit) {
      unmatched.push(key);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `replay: nothing stored for ${key}`, reason: 'NotFound', code: 404 }));
      return;
    }
    const text = typeof hit.response.body === 'string' ? hit.response.body : JSON.stringify(hit.response.body);
    res.writeHead(hit.response.status, { 'content-type': hit.response.contentType ?? 'application/json' });
    res.end(text);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket) => {
    const key = `${req.method} ${canonical(req.url ?? '/')}`;
    seen.push(`${key} (websocket)`);
    const m = /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/portforward$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    const podPort = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ports'));
    const local = opts.portForward?.[podPort];
    if (!m || !local) {
      unmatched.push(`${key} (websocket)`);
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    portForwardSession(req, socket as net.Socket, podPort, local);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    unmatched,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A kubeconfig for the replay server (token auth, one context with a namespace), in a temp dir. */
export function writeKubeconfig(url: string, opts: { namespace?: string; context?: string } = {}): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-kube-'));
  const ctx = opts.context ?? 'replay';
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `  - name: replay`,
    `    cluster: { server: "${url}", insecure-skip-tls-verify: true }`,
    'users:',
    '  - name: alice',
    '    user: { token: replay-token }',
    'contexts:',
    `  - name: ${ctx}`,
    `    context: { cluster: replay, user: alice${opts.namespace ? `, namespace: ${opts.namespace}` : ''} }`,
    `current-context: ${ctx}`,
    '',
  ].join('\n');
  const file = path.join(dir, 'config');
  fs.writeFileSync(file, text);
  return { dir, file };
}

// --- the API server's port-forward over WebSocket (RFC 6455 framing, v4.channel.k8s.io) ------

function portForwardSession(req: http.IncomingMessage, socket: net.Socket, podPort: number, localPort: number): void {
  const wsKey = req.headers['sec-websocket-key'];
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
  if (!wsKey || !offered.includes('v4.channel.k8s.io')) {
    socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(`${wsKey}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n`,
  );
  const send = (opcode: number, payload: Buffer) => {
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 255]) : Buffer.alloc(10);
    if (len >= 65536) {
      head[0] = 0x80 | opcode;
      head[1] = 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
    if (!socket.destroyed) socket.write(Buffer.concat([head, payload]));
  };
  const portBytes = Buffer.from([podPort & 255, podPort >> 8]);
  // Like the kubelet: each channel (0 data, 1 error) opens with the port number.
  send(2, Buffer.concat([Buffer.from([0]), portBytes]));
  send(2, Buffer.concat([Buffer.from([1]), portBytes]));

  const upstream = net.connect(localPort, '127.0.0.1');
  upstream.on('data', (d: Buffer) => send(2, Buffer.concat([Buffer.from([0]), d])));
  upstream.on('error', (err) => send(2, Buffer.concat([Buffer.from([1]), Buffer.from(`error forwarding port ${podPort}: ${err.message}`)])));
  upstream.on('close', () => {
    send(8, Buffer.alloc(0));
    socket.end();
  });
  socket.on('close', () => upstream.destroy());
  socket.on('error', () => upstream.destroy());

  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      const maskAt = at;
      if (masked) at += 4;
      if (buf.length < at + len) return;
      const payload = Buffer.from(buf.subarray(at, at + len));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= buf[maskAt + (i % 4)];
      buf = buf.subarray(at + len);
      if (opcode === 0x8) {
        upstream.end();
        send(8, Buffer.alloc(0));
        socket.end();
        return;
      }
      if (opcode === 0x9) send(0xa, payload);
      else if ((opcode === 0x2 || opcode === 0x0) && payload.length > 1 && payload[0] === 0) upstream.write(payload.subarray(1));
    }
  });
}
