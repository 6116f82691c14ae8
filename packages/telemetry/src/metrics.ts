// Prometheus metrics: counters and gauges in one process-wide registry, served in the text
// exposition format on TEMPER_METRICS_ADDR (host:port, path /metrics) when it is set.
import * as http from 'node:http';

type Labels = Record<string, string>;

interface Family {
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number }>;
  /** Gauges read at scrape time. */
  collect?: () => number;
}

const families = new Map<string, Family>();

function family(name: string, help: string, type: Family['type']): Family {
  let f = families.get(name);
  if (!f) families.set(name, (f = { help, type, values: new Map() }));
  return f;
}

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}

export function counter(name: string, help: string): Counter {
  const f = family(name, help, 'counter');
  return {
    inc: (labels = {}, by = 1) => {
      const key = JSON.stringify(labels);
      const entry = f.values.get(key) ?? { labels, value: 0 };
      entry.value += by;
      f.values.set(key, entry);
    },
  };
}

/** A gauge whose value is read when Prometheus scrapes. */
export function gauge(name: string, help: string, collect: () => number): void {
  family(name, help, 'gauge').collect = collect;
}

gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage().rss);
gauge('nodejs_heap_used_bytes', 'V8 heap in use, bytes.', () => process.memoryUsage().heapUsed);
gauge('process_cpu_seconds_total', 'User and system CPU time, seconds.', () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
});
gauge('process_uptime_seconds', 'Seconds since the process started.', () => process.uptime());

/** The registry in Prometheus text exposition format. */
export function renderMetrics(): string {
  const lines: string[] = [];
  for (const [name, f] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
    if (f.collect) lines.push(`${name} ${f.collect()}`);
    for (const { labels, value } of f.values.values()) lines.push(`${name}${renderLabels(labels)} ${value}`);
  }
  return lines.join('\n') + '\n';
}

function renderLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Serves /metrics on `address` (host:port); resolves to a stopper. */
export async function serveMetrics(address: string): Promise<() => Promise<void>> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon) || '0.0.0.0';
  const port = Number(address.slice(colon + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`TEMPER_METRICS_ADDR must be host:port, not "${address}"`);
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(renderMetrics());
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

/** serveMetrics on TEMPER_METRICS_ADDR when it is set; a no-op stopper otherwise. */
export async function serveMetricsFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<() => Promise<void>> {
  return env.TEMPER_METRICS_ADDR ? serveMetrics(env.TEMPER_METRICS_ADDR) : async () => undefined;
}
