// The credential flags every temper command takes. Each client of a Temper service reads its
// TLS files and bearer token from the environment (@temper/service grpc-client.ts), so a
// flag given on the command line becomes that setting for this process, over the environment.
//
//   --token T            TEMPER_AUTH_TOKEN        bearer token sent with every call
//   --tls-ca FILE        TEMPER_TLS_CA            CA that signed the services' certificates
//   --tls-cert FILE      TEMPER_TLS_CERT          client certificate, for mutual TLS
//   --tls-key FILE       TEMPER_TLS_KEY           its key
//   --tls-server-name N  TEMPER_TLS_SERVER_NAME   name to expect in the server's certificate
//   --plaintext          TEMPER_PLAINTEXT=loopback  no TLS (loopback addresses only)

const valued: Record<string, string> = {
  '--token': 'TEMPER_AUTH_TOKEN',
  '--tls-ca': 'TEMPER_TLS_CA',
  '--tls-cert': 'TEMPER_TLS_CERT',
  '--tls-key': 'TEMPER_TLS_KEY',
  '--tls-server-name': 'TEMPER_TLS_SERVER_NAME',
};

export const credentialUsage = `credentials (every command; the environment variable in brackets is the default):
  --token T [TEMPER_AUTH_TOKEN]   --tls-ca FILE [TEMPER_TLS_CA]   --tls-cert FILE --tls-key FILE (mutual TLS)
  --tls-server-name NAME [TEMPER_TLS_SERVER_NAME]   --plaintext [TEMPER_PLAINTEXT=loopback] (loopback only)
`;

/** Removes the credential flags from argv and sets them in `env`; returns what is left. */
export function takeCredentialFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (name === '--plaintext' && eq < 0) {
      env.TEMPER_PLAINTEXT = 'loopback';
    } else if (name in valued) {
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw new Error(`${name} needs a value`);
      env[valued[name]] = value;
    } else {
      rest.push(a);
    }
  }
  return rest;
}
