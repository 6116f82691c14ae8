// Opens the store its settings describe: the backend, the staging folder, retention.
import type { Bus } from '@temper/bus';
import type { Logger } from '@temper/service';
import * as path from 'node:path';
import { Backend } from './backends/backend';
import { FsBackend } from './backends/fs';
import { ObjectStoreBackend } from './backends/object-store';
import { publishCommitted } from './events';
import { StoreSettings } from './settings';
import { CheckpointStore } from './store';

export async function openStore(settings: StoreSettings, bus: Bus, log?: Logger): Promise<CheckpointStore> {
  const backend: Backend =
    settings.backend === 'nats'
      ? await ObjectStoreBackend.open(bus.nc, { bucketPrefix: settings.natsBucket, replicas: settings.natsReplicas })
      : await FsBackend.open(settings.dir);
  return CheckpointStore.open({
    backend,
    stagingDir: path.join(settings.dir, 'uploads'),
    retention: { keepLast: settings.keepLast },
    onCommitted: publishCommitted(bus),
    uploadTtlMs: settings.uploadTtlMs,
    quota: settings.quota,
    log,
  });
}
