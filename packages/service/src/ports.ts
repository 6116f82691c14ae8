// Where each service listens by default on one machine (`temper up` and local runs).
export const defaultPorts = {
  generator: 50051,
  scorer: 50052,
  learner: 50053,
  'checkpoint-store': 50054,
} as const;

export type ServiceName = keyof typeof defaultPorts;
export const serviceNamesInOrder: ServiceName[] = ['checkpoint-store', 'scorer', 'generator', 'learner'];

/** The env variable that sets a service's gRPC address (TEMPER_CHECKPOINT_STORE_ADDR, ...). */
export function addressEnvVar(service: ServiceName): string {
  return `TEMPER_${service.toUpperCase().replace(/-/g, '_')}_ADDR`;
}
