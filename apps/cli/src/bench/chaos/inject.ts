// Carries out a fault schedule against a local stack, by the pids the stack started: SIGKILL
// and a new process, SIGSTOP then SIGCONT, and nats-server stopped and started again on the
// same port and JetStream store. Faults run one after another, each as soon as the one before
// is over and its time has come; the schedule ends early when `until` settles.
import type { NatsServer } from '@temper/bus';
import type { ServiceName } from '@temper/service';
import type { LocalStack, ServiceProcess } from '../../local-stack';
import { describeFault, Fault } from './schedule';

export interface Injected {
  fault: Fault;
  /** The pid the fault went to (the old nats-server's for a restart). */
  pid: number;
  /** Seconds from the start of the schedule to the fault's end (the process back, serving). */
  doneS: number;
}

export interface NatsControl {
  current(): NatsServer;
  /** Stops nats-server, waits `downS`, starts it again on the same port and store. */
  restart(downS: number): Promise<void>;
}

export async function injectFaults(stack: LocalStack, nats: NatsControl, schedule: Fault[], until: Promise<unknown>, log: (line: string) => void): Promise<Injected[]> {
  const start = Date.now();
  let over = false;
  void until.finally(() => (over = true));
  const done: Injected[] = [];
  for (const fault of schedule) {
    const wait = start + fault.atS * 1000 - Date.now();
    if (wait > 0) await Promise.race([new Promise((r) => setTimeout(r, wait)), until.catch(() => undefined)]);
    if (over) break;
    const pid = await inject(stack, nats, fault);
    const doneS = (Date.now() - start) / 1000;
    log(`${describeFault(fault)}: pid ${pid}, over at t=${doneS.toFixed(1)}s`);
    done.push({ fault, pid, doneS });
  }
  return done;
}

async function inject(stack: LocalStack, nats: NatsControl, fault: Fault): Promise<number> {
  if (fault.kind === 'nats-restart') {
    const pid = nats.current().pid;
    await nats.restart(fault.downS);
    return pid;
  }
  const target = replica(stack, fault.service, fault.replica);
  const pid = target.process.pid!;
  if (fault.kind === 'pause') {
    process.kill(pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, fault.forS * 1000));
    process.kill(pid, 'SIGCONT');
    return pid;
  }
  await new Promise<void>((resolve) => {
    target.process.once('exit', () => resolve());
    process.kill(pid, 'SIGKILL');
  });
  await stack.start(fault.service);
  return pid;
}

/** The running process of `service` with this index among its running ones (wrapping round). */
function replica(stack: LocalStack, service: ServiceName, index: number): ServiceProcess {
  const running = stack.services.filter((s) => s.name === service && s.process.exitCode === null && s.process.signalCode === null);
  if (running.length === 0) throw new Error(`no ${service} process is running`);
  return running[index % running.length];
}
