// What a generator serves, asked over gRPC.
import { GetServingInfoResponse, RolloutGeneratorClient } from '@temper/proto';
import { grpcClientSetup } from '@temper/service';

export async function generatorServingInfo(address: string, token?: string): Promise<GetServingInfoResponse> {
  const { credentials, options } = grpcClientSetup(address, { token });
  const client = new RolloutGeneratorClient(address, credentials, options);
  try {
    return await new Promise((resolve, reject) => client.getServingInfo({}, (err, res) => (err ? reject(err) : resolve(res))));
  } finally {
    client.close();
  }
}
