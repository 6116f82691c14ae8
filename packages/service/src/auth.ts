// Who may call what. Every method of a Temper API is either a control call (it changes
// something: submits or cancels a run, loads a policy, writes, tags or deletes a checkpoint)
// or a read call; health and reflection stay open (probes carry no credentials). A caller
// proves itself with a bearer token (`authorization: Bearer <token>`) or, under mutual TLS,
// with the identity in its client certificate (common name or DNS name).
//
//   TEMPER_AUTH=none                 no checks at all (the local stack and the tests say so)
//   TEMPER_CONTROL_TOKENS            tokens allowed every call (comma-separated, for rotation)
//   TEMPER_READ_TOKENS               tokens allowed read calls only
//   TEMPER_CONTROL_IDENTITIES        client certificate identities allowed every call (mTLS)
//   TEMPER_READ_IDENTITIES           identities allowed read calls only
//   TEMPER_READ_ACCESS=open          read calls need no credential (default: they need one)
//
// A server with none of these refuses every control and read call: secure unless told otherwise.
import * as grpc from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

export type Access = 'control' | 'read';

export type AuthPolicy =
  | { mode: 'none' }
  | {
      mode: 'enforce';
      controlTokens: string[];
      readTokens: string[];
      controlIdentities: string[];
      readIdentities: string[];
      openReads: boolean;
    };

export class AuthSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthSettingsError';
  }
}

const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export function authPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): AuthPolicy {
  const mode = env.TEMPER_AUTH || 'enforce';
  if (mode === 'none') return { mode: 'none' };
  if (mode !== 'enforce') throw new AuthSettingsError(`TEMPER_AUTH must be "enforce" or "none", got "${mode}"`);
  const readAccess = env.TEMPER_READ_ACCESS || 'credential';
  if (readAccess !== 'open' && readAccess !== 'credential') throw new AuthSettingsError(`TEMPER_READ_ACCESS must be "open" or "credential", got "${readAccess}"`);
  return {
    mode: 'enforce',
    controlTokens: list(env.TEMPER_CONTROL_TOKENS),
    readTokens: list(env.TEMPER_READ_TOKENS),
    controlIdentities: list(env.TEMPER_CONTROL_IDENTITIES),
    readIdentities: list(env.TEMPER_READ_IDENTITIES),
    openReads: readAccess === 'open',
  };
}

/** What a call's credentials allow: nothing, reads, or everything. */
type Grant = 'none' | 'read' | 'control';

export interface AuthDecision {
  ok: boolean;
  code?: grpc.status;
  details?: string;
}

/** Whether a call with these credentials may run a method of this access level. */
export function authorize(policy: AuthPolicy, access: Access, metadata: grpc.Metadata, peer: PeerCertificate | undefined, method: string): AuthDecision {
  if (policy.mode === 'none') return { ok: true };
  if (access === 'read' && policy.openReads) return { ok: true };
  const token = bearerToken(metadata);
  const identities = peer ? certificateIdentities(peer) : [];
  if (token === undefined && identities.length === 0) {
    return { ok: false, code: grpc.status.UNAUTHENTICATED, details: `${method} needs a credential: a bearer token (authorization metadata) or a client certificate` };
  }
  let grant: Grant = 'none';
  if (token !== undefined) {
    if (matchesAny(token, policy.controlTokens)) grant = 'control';
    else if (matchesAny(token, policy.readTokens)) grant = 'read';
    else return { ok: false, code: grpc.status.UNAUTHENTICATED, details: `${method}: the bearer token is not valid` };
  }
  if (identities.some((id) => policy.controlIdentities.includes(id))) grant = 'control';
  else if (grant === 'none' && identities.some((id) => policy.readIdentities.includes(id))) grant = 'read';
  if (grant === 'control' || (grant === 'read' && access === 'read')) return { ok: true };
  const who = token !== undefined ? 'this token' : `client certificate ${identities.join(', ')}`;
  return { ok: false, code: grpc.status.PERMISSION_DENIED, details: `${method} is a ${access} call; ${who} is not allowed it` };
}

function bearerToken(metadata: grpc.Metadata): string | undefined {
  const v = metadata.get('authorization')[0];
  if (typeof v !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(v);
  return m ? m[1] : '';
}

// Compared as digests in constant time, so a wrong token learns nothing from the timing.
function matchesAny(token: string, allowed: string[]): boolean {
  const digest = createHash('sha256').update(token).digest();
  let found = false;
  for (const a of allowed) if (timingSafeEqual(digest, createHash('sha256').update(a).digest())) found = true;
  return found;
}

/** The names a verified client certificate stands for: its common name and its DNS names. */
export function certificateIdentities(peer: PeerCertificate): string[] {
  const ids: string[] = [];
  const cn = peer.subject?.CN;
  if (typeof cn === 'string' && cn) ids.push(cn);
  for (const part of (peer.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m) ids.push(m[1].trim());
  }
  return ids;
}

/**
 * A server interceptor that refuses a call its credentials do not allow, before the handler
 * sees any of it. `accessByPath` maps each method path to its level; paths not in it (health,
 * reflection) are open.
 */
export function authInterceptor(policy: AuthPolicy, accessByPath: Map<string, Access>, onRefused?: (method: string, decision: AuthDecision) => void): grpc.ServerInterceptor {
  return (method, call) => {
    const access = accessByPath.get(method.path);
    if (policy.mode === 'none' || access === undefined) return new grpc.ServerInterceptingCall(call);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const peer = call.getAuthContext()?.sslPeerCertificate;
            const decision = authorize(policy, access, metadata, peer && Object.keys(peer).length ? peer : undefined, method.path);
            if (decision.ok) return mdNext(metadata);
            onRefused?.(method.path, decision);
            call.sendStatus({ code: decision.code!, details: decision.details!, metadata: new grpc.Metadata() });
          },
        }),
    });
  };
}

/** A client interceptor that sends `token` as the bearer credential of every call. */
export function bearerTokenInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}
