// Wider HTTP/2 flow-control windows for the store's gRPC server. Node's default window is
// 64 KiB per stream, so an upload waits for a window update every 64 KiB; on loopback that
// caps a put near 400 MB/s however fast the rest is. grpc-js sets the client's window from
// an option ('grpc-node.flow_control_window', which CheckpointClient sets to FLOW_CONTROL_WINDOW) but has no
// option for the server's, so this reaches its HTTP/2 servers and announces a larger
// window on every new session. If grpc-js ever stops exposing them, nothing changes but speed.
import type * as grpc from '@grpc/grpc-js';
import { FLOW_CONTROL_WINDOW } from '@temper/checkpoint-client';
import type { EventEmitter } from 'node:events';
import type * as http2 from 'node:http2';

const MAX_FRAME_BYTES = 1 << 20;

/** Returns whether the server's sessions will get the wider window. */
export function widenFlowControl(server: grpc.Server, windowBytes = FLOW_CONTROL_WINDOW): boolean {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return false;
  for (const h2 of servers.keys() as IterableIterator<EventEmitter>) {
    h2.on('session', (session: http2.ServerHttp2Session) => {
      try {
        // Larger frames too: 1 MiB chunks arrive in a few frames rather than 64.
        session.settings({ initialWindowSize: windowBytes, maxFrameSize: MAX_FRAME_BYTES });
        session.setLocalWindowSize(2 * windowBytes);
      } catch {
        // A session that is already closing keeps the default window.
      }
    });
  }
  return true;
}
