// CheckpointCommitted on JetStream (TEMPER_EVENTS, subject per run): generators watch it
// to pick up new policy versions. The message id is the checkpoint id and the version, so a
// repeated announcement is dropped as a duplicate while a new version of stored content is not.
import { Bus, publishMessage, subjects } from '@temper/bus';
import { CheckpointCommitted, CheckpointManifest } from '@temper/proto';

export function publishCommitted(bus: Bus): (manifest: CheckpointManifest, policyVersion: number) => Promise<void> {
  return async (manifest, policyVersion) => {
    await publishMessage(bus.js, subjects.checkpointCommitted(manifest.runId), CheckpointCommitted, { manifest, policyVersion }, {
      msgId: `checkpoint-committed-${manifest.id}-v${policyVersion}`,
    });
  };
}
