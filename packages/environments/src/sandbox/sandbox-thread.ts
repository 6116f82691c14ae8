// The sandbox thread: holds the QuickJS runtimes of the conversations it is given and runs
// their calls one at a time, off the generator's event loop (a script that computes for its
// whole time limit delays other scripts, never sampling).
import { parentPort } from 'node:worker_threads';
import { loadQuickJS, QuickJSEnvironmentHost } from './quickjs-host';
import type { SandboxReply, SandboxRequest } from './protocol';

const hosts = new Map<number, QuickJSEnvironmentHost>();

async function handle(req: SandboxRequest): Promise<SandboxReply> {
  try {
    switch (req.op) {
      case 'open':
        hosts.get(req.conversation)?.dispose();
        hosts.delete(req.conversation);
        hosts.set(req.conversation, new QuickJSEnvironmentHost(await loadQuickJS(), req.source, req.limits));
        return { id: req.id, value: null };
      case 'call': {
        const host = hosts.get(req.conversation);
        if (!host) throw new Error('the conversation has no environment open');
        return { id: req.id, value: host.call(req.fn, req.arg) };
      }
      case 'close':
        hosts.get(req.conversation)?.dispose();
        hosts.delete(req.conversation);
        return { id: req.id, value: null };
    }
  } catch (err) {
    return { id: req.id, error: err instanceof Error ? err.message : String(err) };
  }
}

// One request at a time, in order.
let queue = Promise.resolve();
parentPort!.on('message', (req: SandboxRequest) => {
  queue = queue.then(async () => parentPort!.postMessage(await handle(req)));
});
