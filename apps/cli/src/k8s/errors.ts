// Kubernetes API failures as messages a user can act on: what was asked, where, what the API
// server said, and what to try. Works on client-node's ApiException (a status code and the
// Status object as the body) and on network errors, without importing client-node.

export interface Where {
  server: string;
  context: string;
  namespace: string;
}

/** The parts of a Kubernetes Status object that matter here. */
interface Status {
  message?: string;
  reason?: string;
  code?: number;
}

export class K8sCommandError extends Error {
  constructor(
    message: string,
    readonly kind: 'forbidden' | 'unauthorized' | 'not-found' | 'unreachable' | 'api',
  ) {
    super(message);
    this.name = 'K8sCommandError';
  }
}

function statusOf(err: { body?: unknown }): Status {
  const body = err.body;
  if (body && typeof body === 'object') return body as Status;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as unknown;
      if (parsed && typeof parsed === 'object') return parsed as Status;
    } catch {
      return { message: body.trim() || undefined };
    }
  }
  return {};
}

const networkCodes = /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|CERT_[A-Z_]+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\b/;

/** One error for a failed call: `what` is the request in words ("list pods"). */
export function describeK8sError(err: unknown, what: string, where: Where): K8sCommandError {
  if (err instanceof K8sCommandError) return err;
  const e = (err ?? {}) as { code?: unknown; body?: unknown; message?: string; cause?: { code?: string; message?: string } };
  const ctx = `context "${where.context}", namespace "${where.namespace}"`;
  if (typeof e.code === 'number') {
    const status = statusOf(e);
    const said = status.message ? `: ${status.message}` : '';
    switch (e.code) {
      case 401:
        return new K8sCommandError(
          `cannot ${what}: the API server at ${where.server} did not accept your credentials (401 Unauthorized${said}). Log in again or refresh the token of ${ctx}.`,
          'unauthorized',
        );
      case 403:
        return new K8sCommandError(
          `cannot ${what} (${ctx}): forbidden${said}. The chart's Role "<release>-temper-client" grants what \`temper k8s\` needs; ask a cluster admin to bind it to you (helm value rbac.clientSubjects).`,
          'forbidden',
        );
      case 404:
        return new K8sCommandError(`cannot ${what} (${ctx}): not found${said}.`, 'not-found');
      default:
        return new K8sCommandError(`cannot ${what} (${ctx}): the API server answered ${e.code}${status.reason ? ` ${status.reason}` : ''}${said}`, 'api');
    }
  }
  const text = [e.message, e.cause?.code, e.cause?.message, typeof e.code === 'string' ? e.code : undefined].filter(Boolean).join(' ');
  const net = networkCodes.exec(text);
  if (net) {
    const hint = net[1].startsWith('CERT') || net[1].includes('CERT') || net[1].includes('VERIFY')
      ? 'the server certificate is not trusted (check certificate-authority in the kubeconfig)'
      : 'is the cluster running, and is this the right context? (--context, kubectl config get-contexts)';
    return new K8sCommandError(`cannot ${what}: cannot reach the Kubernetes API server at ${where.server} (${ctx}): ${net[1]}; ${hint}`, 'unreachable');
  }
  return new K8sCommandError(`cannot ${what} (${ctx}): ${e.message || String(err)}`, 'api');
}
