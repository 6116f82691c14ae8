// The client's reads wait out a store that is away for a while (restarting, as the chaos run
// makes it): a learner resuming a run lists and reads lineage just then.
import { freePort } from '@temper/bus';
import { CheckpointClient } from '@temper/checkpoint-client';
import { startGrpcServer } from '@temper/service';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { CheckpointStore, checkpointStoreBinding, FsBackend } from '../src';
import { makeModelDir, tempDir } from './helpers';

describe('a store that is away for a while', () => {
  it('is waited for by list and lineage, which answer once it is back', async () => {
    const root = await tempDir();
    const address = `127.0.0.1:${await freePort()}`;
    const client = new CheckpointClient(address);
    const open = async () => {
      const store = await CheckpointStore.open({ backend: await FsBackend.open(path.join(root, 'store')), stagingDir: path.join(root, 'uploads') });
      return { store, server: await startGrpcServer({ address, services: [checkpointStoreBinding(store)] }) };
    };
    try {
      let up = await open();
      const { manifest } = await client.pushDir(await makeModelDir(path.join(root, 'src'), { shards: 1, shardBytes: 1000 }), { runId: 'away', step: 0 });
      await up.server.stop(1000);
      await up.store.close();

      // Asked while nothing listens; the store comes back 3 s later.
      const listed = client.list({ runId: 'away' });
      const lineage = client.lineage(manifest.id);
      await new Promise((r) => setTimeout(r, 3000));
      up = await open();
      try {
        expect((await listed).checkpoints.map((c) => c.id)).toEqual([manifest.id]);
        expect((await lineage).ancestors).toEqual([]);
      } finally {
        await up.server.stop(1000);
        await up.store.close();
      }
    } finally {
      client.close();
      await fsp.rm(root, { recursive: true, force: true });
    }
  }, 60_000);
});
