// The chaos run's fault schedule: seeded, so a run's faults can be printed, read and run again.
// Faults come every few seconds (with jitter); NATS restarts and pauses sit at evenly spread
// places, and the kills between them go round the services in a shuffled order, so each kind
// of service is killed about as often as the others.
import type { ServiceName } from '@temper/service';

export type Fault =
  | { atS: number; kind: 'kill'; service: ServiceName; replica: number }
  | { atS: number; kind: 'pause'; service: ServiceName; replica: number; forS: number }
  | { atS: number; kind: 'nats-restart'; downS: number };

export interface ScheduleOptions {
  seed: number;
  /** Faults in all. */
  count: number;
  /** Mean seconds between faults (each gap is 0.5-1.5 times this). */
  everyS: number;
  natsRestarts: number;
  pauses: number;
  /** How long a paused process stays stopped (past its ack timeout). */
  pauseS: number;
  /** Processes of each service the stack runs. */
  replicas: Record<ServiceName, number>;
}

/** A small seeded generator (mulberry32): the same seed, the same schedule. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function faultSchedule(o: ScheduleOptions): Fault[] {
  if (o.natsRestarts + o.pauses > o.count) throw new Error(`a schedule of ${o.count} faults cannot hold ${o.natsRestarts} NATS restarts and ${o.pauses} pauses`);
  const random = seededRandom(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const kinds: Fault['kind'][] = new Array(o.count).fill('kill');
  // Spread the special faults: restarts at 1/(n+1), 2/(n+1)...; pauses halfway between.
  for (let i = 0; i < o.natsRestarts; i++) kinds[Math.floor(((i + 1) * o.count) / (o.natsRestarts + 1))] = 'nats-restart';
  for (let i = 0; i < o.pauses; i++) {
    let at = Math.floor(((i + 0.5) * o.count) / (o.pauses + 0.5));
    while (kinds[at] !== 'kill') at = (at + 1) % o.count;
    kinds[at] = 'pause';
  }
  const services = (Object.keys(o.replicas) as ServiceName[]).filter((s) => o.replicas[s] > 0);
  // Pausing matters where work is held under an ack timeout: generators and scorers.
  const pausable = services.filter((s) => s === 'generator' || s === 'scorer');
  let round: ServiceName[] = [];
  let atS = 0;
  const out: Fault[] = [];
  for (const kind of kinds) {
    atS += o.everyS * (0.5 + random());
    const at = Math.round(atS * 10) / 10;
    if (kind === 'nats-restart') out.push({ atS: at, kind, downS: 1 });
    else if (kind === 'pause') {
      const service = pick(pausable);
      out.push({ atS: at, kind, service, replica: Math.floor(random() * o.replicas[service]), forS: o.pauseS });
    } else {
      if (round.length === 0) round = shuffled(services, random);
      const service = round.pop()!;
      out.push({ atS: at, kind, service, replica: Math.floor(random() * o.replicas[service]) });
    }
  }
  return out;
}

export function describeFault(f: Fault): string {
  const at = `t=${f.atS.toFixed(1)}s`;
  if (f.kind === 'nats-restart') return `${at} restart nats-server (down ${f.downS} s)`;
  if (f.kind === 'pause') return `${at} SIGSTOP ${f.service}#${f.replica} for ${f.forS} s, then SIGCONT`;
  return `${at} SIGKILL ${f.service}#${f.replica}, then start it again`;
}

function shuffled<T>(xs: readonly T[], random: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
